"""The ``hongtu`` command line (also ``flask --app app …``)."""

from __future__ import annotations

import functools
import time

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from .db import get_store
from .store import StoreError


def _friendly(func):
    """Turn store errors into one-line messages and exit status 1, not tracebacks."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None

    return wrapper


@click.command("init-db")
@with_appcontext
@_friendly
def init_db_command() -> None:
    """创建或升级数据库结构 / create or upgrade the schema (safe to run again)."""
    store = get_store()
    store.init_schema()
    click.echo(f"数据库已就绪 / database ready ({store.backend_name})")


@click.command("demo")
@click.option(
    "--orgs",
    "n_orgs",
    default=5000,
    show_default=True,
    type=click.IntRange(1, 10_000_000),
    help="两新组织数量 / number of organizations",
)
@click.option("--seed", default=42, show_default=True, help="随机种子 / random seed")
@click.option("--replace", is_flag=True, help="删除已有数据 / delete the data already loaded")
@with_appcontext
@_friendly
def demo_command(n_orgs: int, seed: int, replace: bool) -> None:
    """载入昆明演示城市 / load the Kunming demo city (generated data inside real districts)."""
    from .services.demo import load_demo

    store = get_store()
    store.init_schema()
    started = time.perf_counter()
    result = load_demo(store, n_orgs=n_orgs, seed=seed, replace=replace)
    click.echo(
        f"演示城市已载入 / demo loaded in {time.perf_counter() - started:.1f} s "
        f"(generate {result['generate_s']} s, write {result['write_s']} s): "
        + ", ".join(f"{k} {v}" for k, v in result.items() if not k.endswith("_s"))
    )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def serve_command(host: str, port: int) -> None:
    """启动地图服务 / serve the map (for production use gunicorn, see README)."""
    from werkzeug.serving import run_simple

    click.echo(f"红图 Hongtu: http://{host}:{port}/")
    # Flask refuses app.run() inside a CLI command; werkzeug's server is what it would run.
    run_simple(host, port, current_app._get_current_object(), threaded=True)


def register(app: Flask) -> None:
    """Add Hongtu's commands to ``app.cli``."""
    for command in (init_db_command, demo_command, serve_command):
        app.cli.add_command(command)


def main() -> None:
    """Entry point of the ``hongtu`` console script."""
    from . import create_app

    FlaskGroup(
        create_app=create_app,
        add_version_option=False,
        help="红图 Hongtu — 两新党建 GIS 地图服务 / GIS map service for 两新 party building.",
    ).main(prog_name="hongtu")
