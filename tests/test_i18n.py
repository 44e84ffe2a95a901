"""Every string shown to users has an English translation, and the switch applies it."""

import re
from pathlib import Path

import pytest

from app import create_app
from app.errors import STATUS_TEXT
from app.i18n import catalog
from app.intake.schema import KINDS
from app.layers import LAYERS
from app.store.accounts import AUDIT_ACTIONS, ROLE_NAMES
from app.store.queries import SIZE_BANDS
from app.web import areas, corrections, intake, labels, mapbuilder, placing
from geo import democity, vocabulary
from geo.vocabulary import CHANGE_KIND_NAMES, MAP_STATUS_NAMES, PAIR_TIER_NAMES, STATUS_NAMES

from .conftest import signed_in

ROOT = Path(__file__).resolve().parent.parent
CJK = re.compile(r"[\u4e00-\u9fff]")


def shown_strings() -> set[str]:
    """The Chinese source strings of the templates, Hongtu's scripts and the web layer's labels."""
    found: set[str] = set()
    for path in (ROOT / "templates").glob("*.html"):
        for double, single in re.findall(r"""_\(\s*(?:"([^"]+)"|'([^']+)')""", path.read_text(encoding="utf-8")):
            found.add(double or single)
    # Hongtu's scripts: every Chinese literal is a label (status names, card rows, units).
    for path in (ROOT / "static").glob("hongtu-*.js"):
        found |= {s for s in re.findall(r'"([^"\n]*)"', path.read_text(encoding="utf-8")) if CJK.search(s)}
    found |= {zh for _, zh, _ in STATUS_TEXT.values()}
    for path in (ROOT / "app" / "web").glob("*.py"):
        found |= set(re.findall(r'gettext\(\s*"([^"]+)"', path.read_text(encoding="utf-8")))
    found |= {layer.label for layer in LAYERS}
    found |= {name for name, *_ in mapbuilder.BASEMAP_TILES.values()}
    found |= set(placing.TEXT.values()) | set(placing.LOCATED_BY_LABELS.values()) | set(placing.SOURCE_LABELS.values())
    found |= set(corrections.field_names().values()) | set(corrections.VIA_NAMES.values())
    found |= {label for options in corrections.CHOICES.values() for label in options.values()}
    found |= set(MAP_STATUS_NAMES.values()) | set(CHANGE_KIND_NAMES.values()) | set(STATUS_NAMES.values())
    # The words the map script is handed through its config.
    for names in (vocabulary.PLACE_KIND_NAMES, vocabulary.CENTER_LEVEL_NAMES, vocabulary.STATION_KIND_NAMES):
        found |= set(names.values())
    found |= set(vocabulary.ORG_TYPE_NAMES.values())
    found |= set(PAIR_TIER_NAMES.values()) | set(areas.EXPORT_NAMES.values()) | set(AUDIT_ACTIONS.values())
    found |= set(labels.LEVEL_NAMES.values()) | set(labels.HEADERS.values()) | set(ROLE_NAMES.values())
    found |= {label for label, *_ in SIZE_BANDS.values()}
    found |= {kind.zh for kind in KINDS.values()} | {label for _, label in intake.CRS_CHOICES}
    found |= set(democity.INDUSTRIES) | set(democity.SOCIAL_INDUSTRIES) | {"未填"}
    return {s for s in found if CJK.search(s)}


def test_every_shown_string_has_an_english_translation():
    english = catalog("en")
    missing = sorted(shown_strings() - set(english))
    assert not missing, f"add to app/translations/en.json: {missing}"
    untranslated = [k for k, v in english.items() if not v or CJK.search(v)]
    assert not untranslated
    placeholders = [k for k, v in english.items() if set(re.findall(r"{\w+}", k)) != set(re.findall(r"{\w+}", v))]
    assert not placeholders


def test_catalog_has_no_stale_entries():
    assert not sorted(set(catalog("en")) - shown_strings())


@pytest.fixture
def client(demo_store):
    return signed_in(create_app({"DATABASE_URL": demo_store.url, "TESTING": True}))


def test_chinese_by_default_english_on_request_and_remembered(client):
    zh = client.get("/").get_data(as_text=True)
    assert '<html lang="zh-CN">' in zh and "覆盖状态" in zh and ">English<" in zh
    en = client.get("/?lang=en")
    html = en.get_data(as_text=True)
    # Apart from the catalog handed to the map script (keyed by the Chinese), no Chinese is left.
    shown = re.sub(r"window.HONGTU_I18N = .*?;</script>", "", html)
    assert '<html lang="en">' in html and "Coverage status" in shown and "覆盖状态" not in shown
    assert "hongtu_lang=en" in en.headers["Set-Cookie"]
    # The cookie keeps English on the next page, and the map script gets the catalog.
    page = client.get("/dashboard").get_data(as_text=True)
    assert '<html lang="en">' in page and '"组织覆盖": "Organizational coverage"' in page
    assert '<html lang="zh-CN">' in client.get("/?lang=zh").get_data(as_text=True)


def test_unknown_language_falls_back_to_chinese(client):
    assert '<html lang="zh-CN">' in client.get("/?lang=fr").get_data(as_text=True)


def test_counts_take_the_singular_for_one():
    from flask import Flask

    from app.i18n import gettext

    app = Flask(__name__)
    with app.test_request_context("/?lang=en"):
        assert gettext("{n} 个组织", n=1) == "1 organization"
        assert gettext("{n} 个组织", n=2) == "2 organizations"
        assert gettext("{n} 个组织", n=0) == "0 organizations"
    with app.test_request_context("/?lang=zh"):
        assert gettext("{n} 个组织", n=1) == "1 个组织"
