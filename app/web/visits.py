"""The visit page (走访记录): an instructor or staff member records a visit from a phone.

A phone-sized form — date (today), occasion, notes, "use my location", a photo from the
camera — over the organization's earlier visits; the photo is served only to callers whose
jurisdiction holds the organization.
"""

from __future__ import annotations

import math

from flask import Blueprint, Response, abort, current_app, g, render_template, request

from ..db import base_store, get_store
from ..services import editing, visits
from ..store import accounts

bp = Blueprint("visits", __name__, url_prefix="/orgs")


def _checkin() -> visits.Checkin | None:
    try:
        lon, lat = float(request.form.get("lon", "")), float(request.form.get("lat", ""))
    except ValueError:
        return None
    return visits.Checkin(lon, lat) if math.isfinite(lon) and math.isfinite(lat) else visits.Checkin(math.nan, 0)


def _page(found: dict, error: editing.EditError | None = None, saved: dict | None = None, status: int = 200):
    frame = visits.of_organization(get_store(), found["org_id"])
    body = render_template(
        "visit.html",
        found=found,
        kinds=current_app.config["HONGTU_VISIT_KINDS"],
        today=visits.today().isoformat(),
        past=frame.astype(object).where(frame.notna(), None).to_dict("records"),
        far_m=int(current_app.config["HONGTU_VISIT_FAR_M"]),
        error=error,
        saved=saved,
        values=request.form if error else {},
    )
    return Response(body, status=status)


def _found(org_id: str) -> dict:
    found = editing.record(get_store(), org_id)
    if found is None:
        raise editing.not_yours(get_store(), org_id)
    return found


@bp.get("/<org_id>/visit")
def form(org_id: str):
    """The form, over the organization's earlier visits."""
    return _page(_found(org_id))


@bp.post("/<org_id>/visit")
def save(org_id: str):
    """Record the visit; the form again with what was stored, or what was wrong."""
    found = _found(org_id)
    upload = request.files.get("photo")
    photo = upload.read(current_app.config["HONGTU_VISIT_PHOTO_BYTES"] + 1) if upload and upload.filename else None
    config = current_app.config
    try:
        saved = visits.record(
            get_store(),
            org_id,
            request.form,
            g.user["username"],
            kinds=config["HONGTU_VISIT_KINDS"],
            far_m=config["HONGTU_VISIT_FAR_M"],
            checkin=_checkin(),
            photo=photo,
            photo_max_bytes=config["HONGTU_VISIT_PHOTO_BYTES"],
        )
    except editing.EditError as exc:
        accounts.audit(base_store(), g.user["username"], "visit", target=org_id, ok=False, detail=exc.en)
        return _page(found, error=exc, status=exc.status)
    accounts.audit(base_store(), g.user["username"], "visit", target=org_id, address=request.remote_addr)
    return _page(found, saved=saved)


@bp.get("/visits/<int:visit_id>/photo")
def photo(visit_id: int):
    """A visit's photo, within the caller's jurisdiction."""
    image = visits.photo(get_store(), visit_id)
    if image is None:
        abort(404)
    response = Response(image, mimetype="image/jpeg")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
