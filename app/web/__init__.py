"""The web layer: blueprints for map pages, their data endpoints and vendored assets."""

from __future__ import annotations

from flask import Flask

from . import assets, intake, maps


def register(app: Flask) -> None:
    """Register every blueprint of the web layer on ``app``."""
    app.register_blueprint(assets.bp)
    app.register_blueprint(maps.bp)
    app.register_blueprint(intake.bp)
