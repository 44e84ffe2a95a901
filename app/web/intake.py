"""The upload page: import a ledger file through the browser, with the same checks as the CLI."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

from flask import Blueprint, abort, current_app, g, render_template, request, send_from_directory

from ..db import base_store, get_store
from ..intake import KINDS, geocode, import_file
from ..intake.export import write_template
from ..intake.readers import SUPPORTED
from ..store import accounts
from .excel import send_workbook

bp = Blueprint("intake", __name__, url_prefix="/import")

CRS_CHOICES = (
    ("wgs84", "WGS-84（GPS、天地图、CGCS2000）"),
    ("gcj02", "GCJ-02（高德、腾讯）"),
    ("bd09", "BD-09（百度）"),
)


def _reports_dir() -> Path:
    return Path(current_app.instance_path) / "reports"


@bp.get("/")
def form():
    """The upload form."""
    return render_template("import.html", kinds=KINDS, crs_choices=CRS_CHOICES, formats=SUPPORTED, report=None)


@bp.post("/")
def upload():
    """Validate the uploaded file and, if it has no errors and this is no dry run, write it."""
    kind = request.form.get("kind", "")
    upload = request.files.get("file")
    if kind not in KINDS or upload is None or not upload.filename:
        return render_template(
            "import.html",
            kinds=KINDS,
            crs_choices=CRS_CHOICES,
            formats=SUPPORTED,
            report=None,
            problem="请选择数据类型和文件 / choose a kind and a file",
        ), 400
    # Only the extension of the user's file name is used: the name itself never touches the disk.
    suffix = Path(upload.filename).suffix.lower()
    dry_run = bool(request.form.get("dry_run"))
    report = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"upload{suffix}"
            upload.save(path)
            report = import_file(
                get_store(),
                kind,
                path,
                crs=request.form.get("crs", "wgs84"),
                dry_run=dry_run,
                sheet=request.form.get("sheet") or None,
                encoding=request.form.get("encoding") or None,
                fix_swapped=bool(request.form.get("fix_swapped")),
                overwrite_positions=bool(request.form.get("overwrite_positions")),
                geocoder=geocode.from_config(current_app.config),
                max_bytes=current_app.config["HONGTU_MAX_UPLOAD_BYTES"],
                report_dir=_reports_dir(),
            )
    finally:
        # Every attempt, whatever became of it (a failure the handler turns into a page included).
        accounts.audit(
            base_store(),
            g.user["username"],
            "import",
            target=f"{kind} {upload.filename}",
            rows=report.rows if report else None,
            ok=bool(report and report.ok and (report.written or dry_run)),
            address=request.remote_addr,
            detail="dry run" if dry_run else (None if report else "failed"),
        )
    report.path = upload.filename
    status = 200 if report.ok else 422
    return render_template(
        "import.html", kinds=KINDS, crs_choices=CRS_CHOICES, formats=SUPPORTED, report=report
    ), status


@bp.get("/template/<kind>.xlsx")
def template(kind: str):
    """The xlsx template of one kind."""
    if kind not in KINDS:
        abort(404)
    buffer = io.BytesIO()
    write_template(kind, buffer)
    return send_workbook(buffer, f"hongtu-{kind}-template.xlsx")


@bp.get("/reports/<name>")
def report_file(name: str):
    """A validation report written by an import."""
    return send_from_directory(_reports_dir(), name, as_attachment=True)
