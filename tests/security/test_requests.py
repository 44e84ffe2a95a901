"""Requests answered as their GET twin is, bad parameters as the bilingual message, never a
500 (issue 19, findings 10 and 13)."""

from __future__ import annotations

import pytest

from app import create_app
from app.store import Store

from ..conftest import signed_in

PATHS = ["/area/", "/area/map.html", "/area/export/ledger.csv", "/area/report.xlsx", "/embed"]


@pytest.fixture(scope="module")
def app(analyzed_store: Store):
    return create_app({"DATABASE_URL": analyzed_store.url, "TESTING": True})


@pytest.mark.parametrize("path", PATHS)
def test_head_is_checked_exactly_as_get(app, community, path):
    client = signed_in(app, "community", community)
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code, (path, got.status_code, head.status_code)
    assert got.status_code == 302 and community in got.headers["Location"]
    assert head.headers["Location"] == got.headers["Location"]
    followed = client.head(head.headers["Location"])
    assert followed.status_code in (200, 404), followed.status_code


def test_an_escape_decoding_encoding_is_refused_and_no_nul_reaches_the_database(loaded, tmp_path):
    from app.intake import import_file

    from ..test_intake import GOOD_ROWS, HEADER, snapshot, write

    escaped = GOOD_ROWS[0].replace("云锦", "云\\x00锦")
    path = write(tmp_path / "orgs.csv", f"{HEADER}\n{escaped}\n")
    before = snapshot(loaded)
    for encoding in ("unicode_escape", "raw_unicode_escape", "rot13", "no-such-codec"):
        report = import_file(loaded, "orgs", path, encoding=encoding)
        assert not report.ok and "不支持的编码" in report.errors[0].zh
    # The NUL beyond the first 8 KB, where the binary check looks.
    with_nul = GOOD_ROWS[0].replace("云锦", "云\x00锦")
    nul = write(tmp_path / "nul.csv", f"{HEADER}\n" + f"{GOOD_ROWS[1]}\n" * 200 + f"{with_nul}\n")
    assert "NUL" in import_file(loaded, "orgs", nul).errors[0].zh
    assert snapshot(loaded) == before


def test_concurrent_imports_queue_and_the_one_that_waits_too_long_is_told_to_retry(loaded, tmp_path, monkeypatch):
    import threading

    from app.intake import import_file, load

    from ..test_intake import GOOD_ROWS, HEADER, write

    paths = []
    for n in range(3):
        rows = [r.replace("A1,", f"Q{n}1,").replace("A2,", f"Q{n}2,").replace("A3,", f"Q{n}3,") for r in GOOD_ROWS]
        paths.append(write(tmp_path / f"orgs{n}.csv", "\n".join([HEADER, *rows]) + "\n"))
    reports = []
    threads = [threading.Thread(target=lambda p=p: reports.append(import_file(loaded, "orgs", p))) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.ok and r.inserted == 3 for r in reports), [[str(i) for i in r.issues] for r in reports]
    assert loaded.counts()["organizations"] == 3 + 9

    monkeypatch.setattr(load, "IMPORT_WAIT_SECONDS", 0.3)
    with loaded.exclusive("import", 5):
        report = import_file(loaded, "orgs", paths[0])
    assert not report.ok and not report.written and "请稍后重试" in report.errors[0].zh


def test_every_web_import_attempt_is_audited(loaded, tmp_path):
    import io

    app = create_app({"DATABASE_URL": loaded.url, "TESTING": True})
    client = signed_in(app, "street", "530102001")
    with client.session_transaction() as session:
        token = session.get("csrf") or "t"
        session["csrf"] = token
    for dry_run in ("", "1"):
        answer = client.post(
            "/import/",
            data={"kind": "orgs", "csrf_token": token, "dry_run": dry_run, "file": (io.BytesIO(b"\x00\x01"), "x.csv")},
            content_type="multipart/form-data",
        )
        assert answer.status_code == 422
    from app.store import accounts

    entries = accounts.audit_entries(loaded, "import").head(2)
    assert list(entries["username"]) == ["street-530102001"] * 2 and not entries["ok"].any()
