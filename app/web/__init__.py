"""The web layer: blueprints for map pages, their data endpoints and vendored assets."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from ..i18n import gettext
from . import admin, api, areas, assets, auth, charts, dashboard, embed, intake, maps, placing, reports
from .params import BadParameter


def register(app: Flask) -> None:
    """Register every blueprint of the web layer on ``app``."""
    app.jinja_env.filters["percent"] = charts.percent
    app.register_blueprint(assets.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(maps.bp)
    app.register_blueprint(intake.bp)
    app.register_blueprint(areas.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(embed.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(placing.bp)
    app.after_request(embed.frame_ancestors)

    @app.errorhandler(BadParameter)
    def _bad_parameter(exc: BadParameter):
        # Data endpoints answer JSON naming the parameter; a page shows the message.
        if request.path.startswith("/map/"):
            return jsonify({"error": str(exc), "parameter": exc.name}), 400
        return render_template("error.html", heading=gettext("请求有误"), message=str(exc)), 400

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        # API clients get JSON for every error, never an HTML page.
        if request.path.startswith("/api"):
            return api.api_error(exc)
        return exc
