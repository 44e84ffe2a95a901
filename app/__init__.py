"""Hongtu (红图): a GIS map service for urban "两新" party building.

``create_app()`` is the Flask application factory; ``flask --app app …`` and the ``hongtu``
console script both use it.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, request

from . import errors
from .config import from_env
from .store import StoreError, migration_head

ROOT = Path(__file__).resolve().parent.parent
#: Endpoints that answer without reading the schema (assets; the health check reads none).
UNCHECKED_ENDPOINTS = (None, "static", "vendor.asset", "auth.health")


def create_app(config: dict | None = None) -> Flask:
    """Create the Hongtu app.

    Parameters
    ----------
    config : dict, optional
        Settings that override the environment (see :mod:`app.config`), e.g. in tests.
    """
    instance = os.environ.get("HONGTU_INSTANCE")
    app = Flask(
        __name__,
        # Import reports, the default database and caches live here: a deployment's own folder,
        # not the source checkout's instance/.
        instance_path=str(Path(instance).resolve()) if instance else None,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(from_env(app.instance_path))
    app.config.update(config or {})
    app.json.ensure_ascii = False
    app.config["MAX_CONTENT_LENGTH"] = app.config["HONGTU_MAX_UPLOAD_BYTES"]

    from . import cli, i18n, security, web
    from .web import access

    i18n.init_app(app)
    security.init_app(app)

    web.register(app)
    cli.register(app)

    # Read while the process starts, not by its first request (alembic's import alone was
    # 0.25 s of a new worker's first map page).
    migration_head()

    @app.before_request
    def _schema_current():
        # A database made by an older Hongtu would fail query by query: say once what to run.
        if app.extensions.get("hongtu.schema_checked") or request.endpoint in UNCHECKED_ENDPOINTS:
            return
        from .db import get_store

        store = get_store()
        if not store.schema_ready():
            raise StoreError("数据库尚未初始化，请运行 hongtu init-db / the database has no schema: run hongtu init-db")
        if store.schema_outdated():
            raise StoreError(
                "数据库结构来自旧版本，请运行 hongtu init-db 升级 / "
                "the database schema is from an older Hongtu: run hongtu init-db to upgrade it"
            )
        app.extensions["hongtu.schema_checked"] = True

    # After the schema check: who is asking is read from the accounts tables.
    access.init_app(app)

    errors.init_app(app)

    @app.errorhandler(413)
    def _too_large(_exc):
        limit = app.config["HONGTU_MAX_UPLOAD_BYTES"] / 1024 / 1024
        return errors.answer(
            413,
            f"文件过大，上限 {limit:.0f} MB / file too large: the limit is {limit:.0f} MB (HONGTU_MAX_UPLOAD_MB)",
        )

    return app
