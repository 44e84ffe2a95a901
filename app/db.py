"""The application's store: one :class:`app.store.Store` per app, created on first use, and
its view for the current request (scoped to the caller's jurisdiction by :mod:`app.web.access`)."""

from __future__ import annotations

from flask import current_app, g, has_request_context

from .store import Store


def base_store() -> Store:
    """The store of the current app, unrestricted (connections are pooled by its engine)."""
    ext = current_app.extensions
    if "hongtu.store" not in ext:
        ext["hongtu.store"] = Store(current_app.config["DATABASE_URL"])
    return ext["hongtu.store"]


def get_store() -> Store:
    """The store a request reads through: scoped to the caller once the access check has run;
    outside a request (the CLI) the unrestricted store."""
    if has_request_context() and "store" in g:
        return g.store
    return base_store()
