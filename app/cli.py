"""The ``hongtu`` command line (also ``flask --app app …``)."""

from __future__ import annotations

import functools
import getpass
import sys
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from geo.vocabulary import CHANGE_KIND_NAMES, CHANGE_KINDS, PAIRINGS

from .db import get_store
from .intake.schema import KINDS
from .services.analysis import REACHES, Parameters
from .spreadsheets import to_csv
from .store import StoreError, accounts
from .store.models import ROLES

#: The analysis settings' defaults, declared once in ``Parameters``.
DEFAULTS = Parameters()


def _friendly(func):
    """Turn store and account errors into one-line messages and exit status 1, not tracebacks."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (StoreError, accounts.AccountError) as exc:
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


_STAGES = {"read": "读取 read", "validate": "校验 validate", "write": "写入 write"}


@click.command("import")
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--crs", default="wgs84", show_default=True, help="坐标系 / source CRS: wgs84, cgcs2000, gcj02, bd09 or EPSG:n"
)
@click.option("--dry-run", is_flag=True, help="只校验不写入 / validate only, write nothing")
@click.option("--sheet", help="Excel 工作表名 / sheet name (default: the first)")
@click.option("--encoding", help="CSV 编码 / CSV encoding (default: UTF-8, else GB18030/GBK)")
@click.option("--fix-swapped", is_flag=True, help="自动互换填反的经纬度 / swap lon/lat back where swapped")
@click.option(
    "--overwrite-positions",
    is_flag=True,
    help="以文件坐标替换手工定位的位置 / let the file's coordinates replace positions placed by hand",
)
@with_appcontext
@_friendly
def import_command(
    kind: str,
    file: Path,
    crs: str,
    dry_run: bool,
    sheet: str | None,
    encoding: str | None,
    fix_swapped: bool,
    overwrite_positions: bool,
) -> None:
    """导入台账文件 / import a file (xlsx, csv, geojson, gpkg, shp, zip): all rows or none."""
    from .intake import geocode, import_file

    store = get_store()
    store.init_schema()
    with click.progressbar(length=len(_STAGES), label="导入 import", show_pos=True, file=sys.stderr) as bar:

        def step(stage: str) -> None:
            bar.label = _STAGES[stage]
            bar.update(1)

        report = import_file(
            store,
            kind,
            file,
            crs=crs,
            dry_run=dry_run,
            sheet=sheet,
            encoding=encoding,
            fix_swapped=fix_swapped,
            overwrite_positions=overwrite_positions,
            geocoder=geocode.from_config(current_app.config),
            max_bytes=current_app.config["HONGTU_MAX_UPLOAD_BYTES"],
            report_dir=Path(current_app.instance_path) / "reports",
            progress=step,
        )
    for issue in report.issues[:20]:
        click.echo(str(issue), err=True)
    if len(report.issues) > 20:
        click.echo(f"……另有 {len(report.issues) - 20} 条 / {len(report.issues) - 20} more", err=True)
    click.echo(report.summary())
    if not dry_run:
        _audit("import", f"{kind} {file.name}", rows=report.rows, ok=report.ok)
    if report.report_path:
        click.echo(f"报告 / report: {report.report_path}")
    if not report.ok:
        sys.exit(1)


@click.command("template")
@click.argument("kind", type=click.Choice(list(KINDS)))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="输出文件 / output file")
def template_command(kind: str, out: Path | None) -> None:
    """下载导入模板 / write an empty xlsx template for KIND, with every column documented."""
    from .intake.export import write_template

    out = out or Path(f"hongtu-{kind}-template.xlsx")
    write_template(kind, out)
    click.echo(str(out))


@click.group("export")
def export_group() -> None:
    """导出数据 / export data."""


def _export_command(kind: str) -> click.Command:
    @click.command(kind, help=f"导出{KINDS[kind].zh} / export {kind}")
    @click.option(
        "--format", "fmt", type=click.Choice(["xlsx", "csv", "geojson", "gpkg"]), default="xlsx", show_default=True
    )
    @click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="输出文件 / output file")
    @with_appcontext
    @_friendly
    def command(fmt: str, out: Path | None) -> None:
        from .intake import IntakeError
        from .intake.export import export_kind

        out = out or Path(f"hongtu-{kind}.{fmt}")
        try:
            rows = export_kind(get_store(), kind, fmt, out)
        except IntakeError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{rows} 行 rows → {out}")

    return command


for _kind in KINDS:
    export_group.add_command(_export_command(_kind))


@export_group.command("map")
@click.option("--area", "code", help="区划代码，省略为全市 / area code (the whole city if omitted)")
@click.option("--format", "fmt", type=click.Choice(["html", "png", "pdf"]), default="png", show_default=True)
@click.option("--width", type=click.IntRange(300, 4000), default=1200, show_default=True, help="像素 / pixels")
@click.option("--height", type=click.IntRange(200, 4000), default=800, show_default=True, help="像素 / pixels")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="输出文件 / output file")
@with_appcontext
@_friendly
def export_map_command(code: str | None, fmt: str, width: int, height: int, out: Path | None) -> None:
    """导出区域地图（离线 HTML、PNG、PDF）/ the map of an area as standalone HTML, PNG or PDF."""
    from .web.renderer import RenderError
    from .web.reports import render_image, standalone_map

    store = get_store()
    _check_area(store, code)
    out = out or Path(f"hongtu-{code or 'city'}-map.{fmt}")
    with current_app.test_request_context():
        html = standalone_map(store, code, width, height)
        try:
            body = html.encode() if fmt == "html" else render_image(html, fmt, width, height)
        except RenderError as exc:
            raise click.ClickException(str(exc)) from None
    out.write_bytes(body)
    click.echo(f"{out} ({len(body) / 1024:.0f} KB)")


@export_group.command("report")
@click.option("--area", "code", help="区划代码，省略为全市 / area code (the whole city if omitted)")
@click.option("--format", "fmt", type=click.Choice(["xlsx"]), default="xlsx", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="输出文件 / output file")
@with_appcontext
@_friendly
def export_report_command(code: str | None, fmt: str, out: Path | None) -> None:
    """导出区域 Excel 报表（汇总、下级区域、空白台账、结对、联合党支部建议）/ an area's Excel report."""
    from .store import queries
    from .web.reports import area_workbook

    store = get_store()
    _check_area(store, code)
    run_id = queries.latest_run_id(store)
    if not run_id:
        raise click.ClickException("尚无分析，请先运行 hongtu analyze / no analysis yet: run hongtu analyze first")
    out = out or Path(f"hongtu-{code or 'city'}-report.{fmt}")
    with current_app.test_request_context():
        out.write_bytes(area_workbook(store, code, run_id))
    click.echo(str(out))


def _check_area(store, code: str | None) -> None:
    from .store import area_stats

    if code is None:
        return
    try:
        area_stats.level_of(code)
    except ValueError:
        raise click.ClickException(f"区划代码无效 / not an area code: {code!r}") from None
    if not area_stats.trail(store, code):
        raise click.ClickException(f"没有这个区域 / no area {code!r}")


@click.command("analyze")
@click.option(
    "--radius", type=float, default=None, help="服务半径（米）/ service radius in metres [HONGTU_SERVICE_RADIUS_M]"
)
@click.option("--capacity", is_flag=True, help="结对遵守阵地承载能力 / pair within each center's capacity")
@click.option(
    "--pairing",
    type=click.Choice(PAIRINGS),
    default=DEFAULTS.pairing,
    show_default=True,
    help="结对方式：先本社区、再本街道、后跨界 / own community, then street, then across; "
    "street: only the street's community centers; nearest: the nearest community center",
)
@click.option("--sites", type=int, default=DEFAULTS.sites, show_default=True, help="新阵地选址个数 / new center sites")
@click.option(
    "--grid-target",
    type=int,
    default=DEFAULTS.grid_target,
    show_default=True,
    help="生成网格时每格组织数 / organizations per generated grid",
)
@click.option(
    "--branch-distance",
    type=float,
    default=DEFAULTS.branch_distance_m,
    show_default=True,
    help="联合党支部单位间最大距离（米）/ largest distance within a joint branch",
)
@click.option(
    "--branch-max-units",
    type=int,
    default=DEFAULTS.branch_max_units,
    show_default=True,
    help="每个联合党支部至多几个单位（2–5）/ most units per joint branch (2-5)",
)
@click.option(
    "--branch-min-members",
    type=int,
    default=DEFAULTS.branch_min_members,
    show_default=True,
    help="联合党支部至少几名正式党员（≥3）/ fewest full members of a joint branch (3 or more)",
)
@click.option(
    "--joins",
    type=click.Choice(["memory", "database"]),
    default=DEFAULTS.joins,
    show_default=True,
    help="空间连接在内存或 PostGIS 中计算 / run the spatial joins in memory or inside PostGIS (province scale)",
)
@click.option(
    "--reach",
    type=click.Choice(REACHES),
    default=DEFAULTS.reach,
    show_default=True,
    help="服务可达：沿步行路网（未载入时按直线）或直线 / along the roads (straight line without them) or straight",
)
@click.option(
    "--walk-speed",
    type=click.FloatRange(min=0.1, max=5),
    default=DEFAULTS.walk_speed_ms,
    show_default=True,
    help="步行速度（米/秒）/ walking speed in m/s",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="输出目录 / write the run's files here")
@click.option("--compare", nargs=2, type=int, metavar="RUN_A RUN_B", help="比较两次分析 / compare two runs")
@with_appcontext
@_friendly
def analyze_command(
    radius,
    capacity,
    pairing,
    sites,
    grid_target,
    branch_distance,
    branch_max_units,
    branch_min_members,
    joins,
    reach,
    walk_speed,
    out,
    compare,
) -> None:
    """两个覆盖分析 / analyze coverage, blank areas, service reach, pairing and joint branches; store a run."""
    from .services import analysis

    store = get_store()
    store.init_schema()
    if compare:
        changes, rates = analysis.compare_runs(store, *compare)
        counts = changes["change"].value_counts()
        click.echo(
            ", ".join(
                f"{CHANGE_KIND_NAMES[kind]} {kind.replace('_', ' ')}: {counts.get(kind, 0)}" for kind in CHANGE_KINDS
            )
        )
        click.echo(rates.to_string(index=False))
        if out:
            out.mkdir(parents=True, exist_ok=True)
            to_csv(changes, out / "changes.csv", encoding="utf-8-sig")
            to_csv(rates, out / "rates.csv", encoding="utf-8-sig")
        return
    try:
        params = analysis.Parameters(
            radius_m=radius or current_app.config["HONGTU_SERVICE_RADIUS_M"],
            capacity=capacity,
            pairing=pairing,
            sites=sites,
            grid_target=grid_target,
            branch_distance_m=branch_distance,
            branch_max_units=branch_max_units,
            branch_min_members=branch_min_members,
            joins=joins,
            reach=reach,
            walk_speed_ms=walk_speed,
        )
    except ValueError as exc:  # a joint-branch rule out of its range, named
        raise click.ClickException(str(exc)) from None
    if joins == "database" and store.backend_name != "postgis":
        raise click.ClickException("--joins database 需要 PostGIS / needs PostGIS (DATABASE_URL=postgresql://…)")
    run_id, results = analysis.run_analysis(store, params)
    summary = results.summary
    _audit("analysis", f"run {run_id}", rows=summary["organizations"])
    rates = summary["rates"]
    click.echo(
        f"分析 run {run_id}: {summary['organizations']} 组织 organizations, 在范围 in scope {summary['in_scope']}"
    )
    click.echo(
        "  两个覆盖率 both {both_rate:.1%} · 组织覆盖率 organizational {org_coverage_rate:.1%} · "
        "单独组建率 own {own_rate:.1%} · 工作覆盖率 work {work_rate:.1%}".format(
            **{k: v if v is not None else float("nan") for k, v in rates.items()}
        )
    )
    click.echo(
        f"  生成网格 generated grids {summary['generated_grids']} · 空白热点 hot spots {summary['hotspots']} · "
        f"联合党支部建议 joint-branch proposals {summary['joint_branch_proposals']}"
    )
    click.echo(
        f"  可组建联合党支部的单位 units that could join {summary['joint_branch_eligible']} · "
        f"已纳入 in proposals {summary['units_in_proposals']} · 最多可纳入 at most {summary['joint_branch_bound']}"
    )
    if summary["reach"] == "walk":
        reached = " · ".join(f"{m} 分钟 min {n}" for m, n in summary["walk_reached"].items())
        click.echo(
            f"  步行可达 walking reach: {reached} · 步行不可达 unreachable {summary['walk_unreachable']} · "
            f"远离道路 far from a street {summary['walk_far_from_street']}"
        )
    else:
        click.echo(f"  {summary['reach_note']}")
    click.echo("  耗时 timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in results.timings.items()))
    if out:
        for path in analysis.write_outputs(store, run_id, out):
            click.echo(f"  {path}")


def _audit(action: str, target: str, rows: int | None = None, ok: bool = True) -> None:
    """Record a command in the audit log as the operating-system user who ran it."""
    accounts.audit(get_store(), f"cli:{getpass.getuser()}", action, target=target, rows=rows, ok=ok)


@click.group("user")
def user_group() -> None:
    """账户管理 / manage accounts (roles: admin, planner, street, community, viewer)."""


@user_group.command("add")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES), help="角色 / role")
@click.option("--area", help="管辖区域代码 / jurisdiction area code (street: 9 digits, community: 12)")
@click.password_option(help="密码（至少 10 位，含三类字符）/ password (10+ characters, three classes)")
@with_appcontext
@_friendly
def user_add(username: str, role: str, area: str | None, password: str) -> None:
    """新建账户 / create an account."""
    accounts.add_user(get_store(), username, password, role, area)
    _audit("user", f"add {username} {role} {area or ''}".strip())
    click.echo(f"已创建 / created {username} ({role}{', ' + area if area else ''})")


@user_group.command("role")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES), help="角色 / role")
@click.option("--area", help="管辖区域代码 / jurisdiction area code")
@with_appcontext
@_friendly
def user_role(username: str, role: str, area: str | None) -> None:
    """修改角色和管辖区域 / change a user's role and jurisdiction."""
    accounts.set_role(get_store(), username, role, area)
    _audit("user", f"role {username} {role} {area or ''}".strip())
    click.echo(f"已修改 / changed {username}: {role}{', ' + area if area else ''}")


@user_group.command("disable")
@click.argument("username")
@click.option("--enable", is_flag=True, help="重新启用 / enable again")
@with_appcontext
@_friendly
def user_disable(username: str, enable: bool) -> None:
    """停用账户（会话和 API 令牌立即失效）/ disable an account (its sessions and API tokens stop at once)."""
    accounts.set_active(get_store(), username, enable)
    _audit("user", f"{'enable' if enable else 'disable'} {username}")
    click.echo(f"{'已启用 / enabled' if enable else '已停用 / disabled'} {username}")


@user_group.command("password")
@click.argument("username")
@click.password_option(help="新密码 / new password")
@with_appcontext
@_friendly
def user_password(username: str, password: str) -> None:
    """重设密码 / set a new password."""
    accounts.set_password(get_store(), username, password)
    _audit("user", f"password {username}")
    click.echo(f"已重设 / password set for {username}")


@user_group.command("unlock")
@click.argument("username")
@with_appcontext
@_friendly
def user_unlock(username: str) -> None:
    """解除登录锁定 / let a user sign in again at once after failed attempts."""
    accounts.unlock(get_store(), username, f"cli:{getpass.getuser()}")
    click.echo(f"已解锁 / unlocked {username}")


@user_group.command("2fa")
@click.argument("username")
@with_appcontext
@_friendly
def user_2fa(username: str) -> None:
    """启用双因素认证（显示一次）/ enrol a second factor (TOTP); shows its URI and recovery codes once."""
    uri, codes = accounts.enrol_second_factor(get_store(), username)
    _audit("user", f"2fa {username}")
    click.echo("用身份验证器扫描或输入 / add to an authenticator app (scan as QR or paste):")
    click.echo(uri)
    click.echo("恢复码（每个只能用一次，请妥善保存）/ recovery codes (each works once; keep them safe):")
    for code in codes:
        click.echo(f"  {code}")


@user_group.command("list")
@with_appcontext
@_friendly
def user_list() -> None:
    """列出账户 / list accounts."""
    for u in accounts.list_users(get_store()):
        state = "active" if u["active"] else "disabled"
        click.echo(f"{u['username']}\t{u['role']}\t{u['area_code'] or '-'}\t{state}")


@click.group("token")
def token_group() -> None:
    """API 令牌和嵌入链接 / API tokens and published embed links."""


@token_group.command("api")
@click.argument("username")
@click.option("--days", type=float, help="有效天数 / valid for this many days (default: until revoked)")
@click.option("--label", default="", help="说明 / what it is for")
@with_appcontext
@_friendly
def token_api(username: str, days: float | None, label: str) -> None:
    """为用户签发 API 令牌（以该用户身份访问 /api）/ issue an API token acting as USERNAME."""
    token = accounts.issue_token(get_store(), "api", username, label=label, days=days)
    _audit("token", f"api {username} {label}".strip())
    click.echo(token)


@token_group.command("embed")
@click.option("--area", help="区域代码（默认全市）/ area code (default: the city)")
@click.option("--layers", default="community,orgs", show_default=True, help="图层 / layers, comma-separated")
@click.option("--days", type=float, default=30, show_default=True, help="有效天数 / valid for this many days")
@click.option("--label", default="", help="说明 / what it is for")
@with_appcontext
@_friendly
def token_embed(area: str | None, layers: str, days: float, label: str) -> None:
    """发布只读嵌入链接 / publish a read-only embed link; prints its token."""
    try:
        token = accounts.publish_embed(
            get_store(), f"cli:{getpass.getuser()}", area, [x for x in layers.split(",") if x], days, label
        )
    except accounts.AccountError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(token)


@token_group.command("list")
@with_appcontext
@_friendly
def token_list() -> None:
    """列出令牌（不显示令牌本身）/ list tokens (never their value)."""
    for t in accounts.list_tokens(get_store()):
        expires = t["expires_at"].strftime("%Y-%m-%d %H:%M") if t["expires_at"] else "-"
        state = "live" if t["live"] else "dead"
        click.echo(f"{t['id']}\t{t['kind']}\t{t['username']}\t{t['area_code'] or '-'}\t{expires}\t{state}")


@token_group.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
@_friendly
def token_revoke(token_id: int) -> None:
    """撤销令牌 / revoke a token at once."""
    accounts.revoke_token(get_store(), token_id)
    _audit("token", f"revoke {token_id}")
    click.echo(f"已撤销 / revoked {token_id}")


def register(app: Flask) -> None:
    """Add Hongtu's commands to ``app.cli``."""
    for command in (
        init_db_command,
        demo_command,
        serve_command,
        import_command,
        template_command,
        export_group,
        analyze_command,
        user_group,
        token_group,
    ):
        app.cli.add_command(command)


def main() -> None:
    """Entry point of the ``hongtu`` console script."""
    from . import create_app

    FlaskGroup(
        create_app=create_app,
        add_version_option=False,
        help="红图 Hongtu — 两新党建 GIS 地图服务 / GIS map service for 两新 party building.",
    ).main(prog_name="hongtu")
