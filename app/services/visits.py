"""Visits to organizations (走访记录): recorded from a phone, checked, and counted.

A visit names the organization, the day, the occasion (a local list, ``HONGTU_VISIT_KINDS``)
and notes; optionally where the phone was — stored with its distance from the organization and
flagged beyond ``HONGTU_VISIT_FAR_M``, never refused for it — and one photo, which is decoded
and re-encoded as a JPEG of at most ``PHOTO_SIDE_PX``, so that its EXIF (the phone's position,
its owner's device) is not kept and nothing but an image is stored. An organization outside
the caller's jurisdiction is 403, as for corrections.
"""

from __future__ import annotations

import io
import math
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import insert, select, text

from geo.changes import great_circle_m

from ..i18n import LOCAL_TIME
from ..store import Store, result_frame
from ..store.models import visits
from . import editing

#: Longest side of a stored photo (pixels): enough to read a plaque, small for a phone's upload.
PHOTO_SIDE_PX = 1600
#: Largest image a photo may decode to (pixels): a decompression bomb is refused before decoding.
PHOTO_MAX_PIXELS = 40_000_000
#: Photos decoded at once per process.
_DECODING = threading.BoundedSemaphore(2)
#: Longest notes kept (characters).
NOTES_MAX = 2000
#: The earliest day a visit may be dated.
EARLIEST = date(2000, 1, 1)


@dataclass
class Checkin:
    """Where the phone was at the visit: WGS-84 degrees."""

    lon: float
    lat: float


def today() -> date:
    """Today in China (UTC+8)."""
    return datetime.now(ZoneInfo(LOCAL_TIME)).date()


def _refuse(status: int, field: str, zh: str, en: str) -> editing.EditError:
    return editing.EditError(status, zh, en, issues=[{"field": field, "zh": zh, "en": en}])


def _day(value: str) -> str:
    try:
        day = date.fromisoformat(value.strip())
    except (AttributeError, ValueError):
        raise _refuse(400, "visited_on", "日期无效（如 2026-03-01）", "not a valid date (e.g. 2026-03-01)") from None
    if day > today():
        raise _refuse(400, "visited_on", "走访日期不能晚于今天", "a visit cannot be dated in the future")
    if day < EARLIEST:
        raise _refuse(400, "visited_on", "走访日期过早", "the date is too early")
    return day.isoformat()


def clean_photo(data: bytes, max_bytes: int) -> bytes:
    """``data`` as a JPEG without metadata, upright, at most ``PHOTO_SIDE_PX`` on its longer
    side; refused (400/413) when it is too large or not an image."""
    if len(data) > max_bytes:
        raise _refuse(
            413,
            "photo",
            f"照片过大（至多 {max_bytes // 1024 // 1024} MB）",
            f"photo too large (at most {max_bytes} bytes)",
        )
    try:
        # A decoded photo takes 3–4 bytes a pixel however small its file: a few at a time per
        # process, or a handful of 100 KB uploads would hold gigabytes.
        with _DECODING, Image.open(io.BytesIO(data)) as image:
            if image.format not in ("JPEG", "PNG", "WEBP", "HEIF", "MPO"):
                raise UnidentifiedImageError(image.format)
            if image.width * image.height > PHOTO_MAX_PIXELS:
                raise _refuse(413, "photo", "照片像素过多", "photo has too many pixels")
            # A JPEG is decoded at the smallest scale (1/2, 1/4, 1/8) still larger than kept.
            image.draft("RGB", (PHOTO_SIDE_PX, PHOTO_SIDE_PX))
            # Phones store the orientation in EXIF: applied now, since EXIF is not kept.
            upright = ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        raise _refuse(400, "photo", "不是有效的图片（JPEG、PNG）", "not an image (JPEG, PNG)") from None
    upright.thumbnail((PHOTO_SIDE_PX, PHOTO_SIDE_PX))
    out = io.BytesIO()
    upright.save(out, "JPEG", quality=82, optimize=True)
    return out.getvalue()


def record(
    store: Store,
    org_id: str,
    values: dict,
    username: str | None,
    *,
    kinds: list[str],
    far_m: float,
    checkin: Checkin | None = None,
    photo: bytes | None = None,
    photo_max_bytes: int = 8 * 1024 * 1024,
) -> dict:
    """Record a visit to ``org_id`` (``values``: ``visited_on`` ISO date, ``kind``, ``notes``);
    answers the stored visit (without its photo). Raises :class:`editing.EditError`."""
    found = editing.record(store, org_id)
    if found is None:
        raise editing.not_yours(store, org_id)
    visited_on = _day(values.get("visited_on") or "")
    kind = (values.get("kind") or "").strip()
    if kind not in kinds:
        raise _refuse(
            400, "kind", f"走访类型应为：{'、'.join(kinds)}", f"the occasion must be one of {', '.join(kinds)}"
        )
    notes = (values.get("notes") or "").strip()[:NOTES_MAX] or None
    distance = far = None
    if checkin is not None:
        if not (math.isfinite(checkin.lon) and math.isfinite(checkin.lat)) or not (
            -180 <= checkin.lon <= 180 and -90 <= checkin.lat <= 90
        ):
            raise _refuse(400, "position", "位置无效", "not a valid position")
        if found["lon"] is not None:
            distance = round(float(great_circle_m(checkin.lon, checkin.lat, found["lon"], found["lat"])), 1)
            far = distance > far_m
    image = clean_photo(photo, photo_max_bytes) if photo else None
    row = {
        "organization_id": found["id"],
        "visited_on": visited_on,
        "kind": kind,
        "notes": notes,
        "username": username,
        "lon": checkin.lon if checkin else None,
        "lat": checkin.lat if checkin else None,
        "distance_m": distance,
        "far": bool(far),
        "photo": image,
        "created_at": datetime.now(UTC),
    }
    with store.connect(write=True) as conn:
        visit_id = conn.execute(insert(visits).values(**row).returning(visits.c.id)).scalar_one()
        store.data_changed(conn)
    return {**{k: v for k, v in row.items() if k != "photo"}, "id": visit_id, "has_photo": image is not None}


def of_organization(store: Store, org_id: str) -> pd.DataFrame:
    """The visits of an organization the store can see, newest first (empty otherwise)."""
    found = editing.record(store, org_id)
    if found is None:
        return pd.DataFrame()
    query = (
        select(
            visits.c.id,
            visits.c.visited_on,
            visits.c.kind,
            visits.c.notes,
            visits.c.username,
            visits.c.distance_m,
            visits.c.far,
            (visits.c.photo.is_not(None)).label("has_photo"),
        )
        .where(visits.c.organization_id == found["id"])
        .order_by(visits.c.visited_on.desc(), visits.c.id.desc())
    )
    with store.connect() as conn:
        return result_frame(conn.execute(query))


def is_unvisited(instructed: bool, last: str | None, days: int) -> bool:
    """挂名未走访: an active instructor, and no visit in the last ``days`` days."""
    return instructed and (last is None or last < (today() - timedelta(days=days)).isoformat())


def photo(store: Store, visit_id: int) -> bytes | None:
    """A visit's photo, when the store can see its organization (None otherwise, and for an
    id no database integer can hold)."""
    if not 0 < visit_id < 2**63:
        return None
    sql, params = store.restrict(
        "SELECT v.photo FROM visits v JOIN organizations o ON o.id = v.organization_id WHERE v.id = :id",
        "organizations",
        "o",
    )
    with store.connect() as conn:
        return conn.execute(text(sql), {**params, "id": visit_id}).scalar()
