"""The web layer: blueprints for map pages, their data endpoints and vendored assets."""

from __future__ import annotations

from flask import Flask

from geo.vocabulary import MAP_STATUS_COLORS, MAP_STATUS_NAMES, MAP_STATUSES

from ..i18n import local_time
from ..layers import LAYERS
from . import (
    admin,
    api,
    areas,
    assets,
    auth,
    charts,
    corrections,
    dashboard,
    embed,
    feature_edits,
    intake,
    labels,
    maps,
    placing,
    reports,
    results,
    visits,
)


def register(app: Flask) -> None:
    """Register every blueprint of the web layer on ``app``."""
    app.jinja_env.filters["percent"] = charts.percent
    app.jinja_env.filters["local_time"] = local_time
    # The legend draws each status in its one colour, in the order a cluster's ring does.
    app.jinja_env.globals["map_statuses"] = [(s, MAP_STATUS_NAMES[s], MAP_STATUS_COLORS[s]) for s in MAP_STATUSES]
    app.jinja_env.globals["legend_layers"] = [layer for layer in LAYERS if layer.legend]
    app.jinja_env.globals["city_name"] = labels.city_name
    app.register_blueprint(assets.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(maps.bp)
    app.register_blueprint(intake.bp)
    app.register_blueprint(areas.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(feature_edits.bp)
    app.register_blueprint(embed.bp)
    app.register_blueprint(reports.bp)
    app.register_blueprint(placing.bp)
    app.register_blueprint(corrections.bp)
    app.register_blueprint(results.bp)
    app.register_blueprint(visits.bp)
    app.jinja_env.globals["results_state"] = results.results_state
    app.after_request(embed.frame_ancestors)
