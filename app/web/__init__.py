"""The web layer: blueprints for map pages, their data endpoints and vendored assets."""

from __future__ import annotations

from flask import Flask, request
from werkzeug.exceptions import HTTPException

from . import api, areas, assets, dashboard, intake, maps


def register(app: Flask) -> None:
    """Register every blueprint of the web layer on ``app``."""
    app.register_blueprint(assets.bp)
    app.register_blueprint(maps.bp)
    app.register_blueprint(intake.bp)
    app.register_blueprint(areas.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(api.bp)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        # API clients get JSON for every error, never an HTML page.
        if request.path.startswith("/api"):
            return api.api_error(exc)
        return exc
