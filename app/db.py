"""The application's store: one :class:`app.store.Store` per app, created on first use."""

from __future__ import annotations

from flask import current_app

from .store import Store


def get_store() -> Store:
    """The store of the current app (connections are pooled by its engine)."""
    ext = current_app.extensions
    if "hongtu.store" not in ext:
        ext["hongtu.store"] = Store(current_app.config["DATABASE_URL"])
    return ext["hongtu.store"]
