"""The web layer: blueprints for map pages, their data endpoints and vendored assets."""

from __future__ import annotations

from flask import Flask

from . import areas, assets, dashboard, intake, maps


def register(app: Flask) -> None:
    """Register every blueprint of the web layer on ``app``."""
    app.register_blueprint(assets.bp)
    app.register_blueprint(maps.bp)
    app.register_blueprint(intake.bp)
    app.register_blueprint(areas.bp)
    app.register_blueprint(dashboard.bp)
