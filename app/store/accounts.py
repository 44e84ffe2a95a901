"""Accounts, roles, access tokens and the audit log.

A user has a role and, for staff and viewers, a jurisdiction: an area code. Area codes nest
(a street's code starts with its district's, a grid's with its community's), so "inside the
jurisdiction" is a prefix test for areas and a polygon test for everything located by geometry.

Tokens are random 256-bit strings handed out once; only their SHA-256 is stored. An ``api``
token acts as its user; an ``embed`` token is a published, read-only link to one area's map.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import case, func, insert, or_, select, text, update
from werkzeug.security import check_password_hash, generate_password_hash

from . import Store
from .models import AREA_CODE_LENGTHS, ROLES, access_tokens, audit_log, users

#: What each role may do. ``contacts``: see secretaries' names and phones unmasked.
PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"read", "write", "analyze", "export", "admin", "contacts"}),
    "planner": frozenset({"read", "analyze", "export"}),
    "street": frozenset({"read", "write", "export", "contacts"}),
    "community": frozenset({"read", "write", "export", "contacts"}),
    "viewer": frozenset({"read"}),
    # A published embed link: its map layers, nothing else.
    "embed": frozenset({"embed"}),
}
#: The area level a role's jurisdiction must be (None: the whole city; "any": optional, any level).
JURISDICTION_LEVEL = {"admin": None, "planner": None, "street": "street", "community": "community", "viewer": "any"}
ROLE_NAMES = {
    "admin": "管理员",
    "planner": "规划人员",
    "street": "街道工作人员",
    "community": "社区工作人员",
    "viewer": "只读用户",
}
#: Failed logins within the window that lock further attempts: per user name, and (higher, as
#: an office shares one address behind its NAT) per address.
MAX_FAILED_LOGINS = 5
MAX_FAILED_PER_ADDRESS = 20
LOGIN_WINDOW = timedelta(minutes=15)
#: Layers an embed token may publish: map overlays only, never ledgers or cards.
EMBED_LAYERS = ("orgs", "district", "street", "community", "grid", "places", "centers", "stations", "hotspots", "gaps")


class AccountError(ValueError):
    """A request on accounts or tokens that cannot be honoured; the message is bilingual."""


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; they are stored in UTC.
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def _check_jurisdiction(store: Store, role: str, area_code: str | None) -> None:
    if role not in ROLES:
        raise AccountError(f"未知角色 {role} / unknown role {role!r}: one of {', '.join(ROLES)}")
    level = JURISDICTION_LEVEL[role]
    if level is None and area_code:
        raise AccountError(f"{role} 角色管辖全市，不能指定区域 / the {role} role covers the whole city: give no area")
    if level in ("street", "community") and (not area_code or len(area_code) != AREA_CODE_LENGTHS[level]):
        digits = AREA_CODE_LENGTHS[level]
        raise AccountError(f"{role} 角色需要 {digits} 位区划代码 / the {role} role needs a {digits}-digit area code")
    if area_code:
        with store.connect() as conn:
            if conn.execute(text("SELECT 1 FROM areas WHERE code = :code"), {"code": area_code}).scalar() is None:
                raise AccountError(f"区划代码 {area_code} 不存在 / no area {area_code!r}")


def add_user(store: Store, username: str, password: str, role: str, area_code: str | None = None) -> None:
    """Create an account; ``area_code`` is its jurisdiction (see ``JURISDICTION_LEVEL``)."""
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("用户名不能为空且不超过 64 字符 / the user name must be 1–64 characters")
    if len(password) < 8:
        raise AccountError("密码至少 8 位 / the password must have at least 8 characters")
    _check_jurisdiction(store, role, area_code)
    with store.connect() as conn:
        if conn.execute(select(users.c.id).where(users.c.username == username)).first():
            raise AccountError(f"用户 {username} 已存在 / user {username!r} exists")
        conn.execute(
            insert(users).values(
                username=username,
                password_hash=generate_password_hash(password),
                role=role,
                area_code=area_code or None,
                active=True,
                created_at=_now(),
            )
        )


def _change(store: Store, username: str, **values) -> None:
    with store.connect() as conn:
        if conn.execute(update(users).where(users.c.username == username).values(**values)).rowcount == 0:
            raise AccountError(f"没有用户 {username} / no user {username!r}")


def set_role(store: Store, username: str, role: str, area_code: str | None = None) -> None:
    """Give a user another role and jurisdiction."""
    _check_jurisdiction(store, role, area_code)
    _change(store, username, role=role, area_code=area_code or None)


def set_active(store: Store, username: str, active: bool) -> None:
    """Disable (or enable again) an account; a disabled user's sessions and API tokens stop working."""
    _change(store, username, active=active)


def set_password(store: Store, username: str, password: str) -> None:
    """Replace a user's password."""
    if len(password) < 8:
        raise AccountError("密码至少 8 位 / the password must have at least 8 characters")
    _change(store, username, password_hash=generate_password_hash(password))


def list_users(store: Store) -> list[dict]:
    """Every account without its password hash, by user name."""
    columns = [c for c in users.c if c.name != "password_hash"]
    with store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(*columns).order_by(users.c.username))]


def get_user(store: Store, user_id: int) -> dict | None:
    """An active account by id (None if it is missing or disabled)."""
    with store.connect() as conn:
        row = conn.execute(
            select(users.c.id, users.c.username, users.c.role, users.c.area_code).where(
                users.c.id == user_id, users.c.active.is_(True)
            )
        ).first()
    return dict(row._mapping) if row else None


def login_locked(store: Store, username: str, address: str | None) -> bool:
    """Whether too many logins failed within ``LOGIN_WINDOW`` for this user name or from this
    address. Counted from the audit log, so every app instance sees the same count."""
    recent = (audit_log.c.action == "login", audit_log.c.ok.is_(False), audit_log.c.at >= _now() - LOGIN_WINDOW)
    by_name = func.sum(case((audit_log.c.username == username, 1), else_=0))
    by_address = func.sum(case((audit_log.c.address == address, 1), else_=0))
    with store.connect() as conn:
        names, addresses = conn.execute(
            select(by_name, by_address).where(
                *recent, or_(audit_log.c.username == username, audit_log.c.address == address)
            )
        ).one()
    return (names or 0) >= MAX_FAILED_LOGINS or (addresses or 0) >= MAX_FAILED_PER_ADDRESS


def authenticate(store: Store, username: str, password: str, address: str | None = None) -> dict | None:
    """The account for a user name and password, or None; every attempt is audited.

    Raises
    ------
    AccountError
        When too many attempts failed recently (the password is then not even checked).
    """
    if login_locked(store, username, address):
        audit(store, username, "login", ok=False, address=address, detail="locked")
        minutes = int(LOGIN_WINDOW.total_seconds() // 60)
        raise AccountError(
            f"登录失败次数过多，请 {minutes} 分钟后再试 / too many failed logins: try again in {minutes} minutes"
        )
    with store.connect() as conn:
        row = conn.execute(
            select(users.c.id, users.c.username, users.c.role, users.c.area_code, users.c.password_hash).where(
                users.c.username == username, users.c.active.is_(True)
            )
        ).first()
    ok = row is not None and check_password_hash(row.password_hash, password)
    audit(store, username, "login", ok=ok, address=address)
    if not ok:
        return None
    return {k: v for k, v in row._mapping.items() if k != "password_hash"}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    store: Store,
    kind: str,
    username: str,
    *,
    area_code: str | None = None,
    layers: list[str] | None = None,
    label: str = "",
    days: float | None = None,
) -> str:
    """Make an ``api`` token for ``username`` or an ``embed`` link published by ``username``;
    answers the token itself, which is not stored and cannot be shown again."""
    if kind not in ("api", "embed"):
        raise AccountError(f"unknown token kind {kind!r}")
    if kind == "api" and not any(u["username"] == username for u in list_users(store)):
        raise AccountError(f"没有用户 {username} / no user {username!r}")
    if kind == "embed":
        layers = layers or ["orgs", "community"]
        unknown = sorted(set(layers) - set(EMBED_LAYERS))
        if unknown:
            raise AccountError(f"不能发布的图层 / layers that cannot be published: {', '.join(unknown)}")
        if area_code:
            _check_jurisdiction(store, "viewer", area_code)
    token = secrets.token_urlsafe(32)
    with store.connect() as conn:
        conn.execute(
            insert(access_tokens).values(
                token_hash=_hash(token),
                kind=kind,
                username=username,
                area_code=area_code or None,
                layers=",".join(layers) if layers else None,
                label=label[:200],
                created_at=_now(),
                expires_at=_now() + timedelta(days=days) if days else None,
            )
        )
    return token


def resolve_token(store: Store, token: str, kind: str) -> dict | None:
    """The live token (not revoked, not expired) of ``kind``; for an ``api`` token, its active
    user instead. None for any other string."""
    owner = users.c.active.is_(True) if kind == "api" else True
    query = (
        select(access_tokens, users.c.id.label("user_id"), users.c.role, users.c.area_code.label("user_area"))
        .outerjoin(users, (users.c.username == access_tokens.c.username) & owner)
        .where(
            access_tokens.c.token_hash == _hash(token),
            access_tokens.c.kind == kind,
            access_tokens.c.revoked_at.is_(None),
        )
    )
    with store.connect(transaction=False) as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    found = dict(row._mapping)
    expires = _aware(found["expires_at"])
    if expires is not None and expires <= _now():
        return None
    if kind == "api":
        # Acting as its user, with the user's role and jurisdiction.
        if found["user_id"] is None:
            return None
        return {
            "id": found["user_id"],
            "username": found["username"],
            "role": found["role"],
            "area_code": found["user_area"],
        }
    found["layers"] = found["layers"].split(",") if found["layers"] else []
    return found


def revoke_token(store: Store, token_id: int) -> None:
    """Revoke a token at once (it stays listed, marked revoked)."""
    with store.connect() as conn:
        done = conn.execute(
            update(access_tokens)
            .where(access_tokens.c.id == token_id, access_tokens.c.revoked_at.is_(None))
            .values(revoked_at=_now())
        ).rowcount
    if not done:
        raise AccountError(f"没有可撤销的令牌 {token_id} / no live token {token_id}")


def list_tokens(store: Store, kind: str | None = None) -> list[dict]:
    """Tokens (never their value), newest first, with whether each still works."""
    query = select(*[c for c in access_tokens.c if c.name != "token_hash"]).order_by(access_tokens.c.id.desc())
    if kind:
        query = query.where(access_tokens.c.kind == kind)
    with store.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    now = _now()
    for row in rows:
        for key in ("created_at", "expires_at", "revoked_at"):
            row[key] = _aware(row[key])
        row["live"] = row["revoked_at"] is None and (row["expires_at"] is None or row["expires_at"] > now)
    return rows


def audit(
    store: Store,
    username: str | None,
    action: str,
    *,
    target: str | None = None,
    rows: int | None = None,
    ok: bool = True,
    address: str | None = None,
    detail: str | None = None,
) -> None:
    """Append one entry to the audit log (its own transaction: kept even when the action fails)."""
    with store.connect() as conn:
        conn.execute(
            insert(audit_log).values(
                at=_now(),
                username=username,
                action=action,
                target=(target or "")[:300] or None,
                rows=rows,
                ok=ok,
                address=address,
                detail=detail,
            )
        )


def audit_entries(store: Store, action: str | None = None, limit: int | None = 500) -> pd.DataFrame:
    """The audit log, newest first; optionally one action; ``limit`` None for all of it."""
    query = select(audit_log).order_by(audit_log.c.id.desc())
    if action:
        query = query.where(audit_log.c.action == action)
    if limit is not None:
        query = query.limit(limit)
    with store.connect() as conn:
        result = conn.execute(query)
        frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame
