"""Accounts, roles, access tokens and the audit log.

A user has a role and, for staff and viewers, a jurisdiction: an area code. Area codes nest
(a street's code starts with its district's, a grid's with its community's), so "inside the
jurisdiction" is a prefix test for areas and a polygon test for everything located by geometry.

Tokens are random 256-bit strings handed out once; only their SHA-256 is stored. An ``api``
token acts as its user; an ``embed`` token is a published, read-only link to one area's map.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pandas as pd
from sqlalchemy import case, func, insert, select, text, update
from werkzeug.security import check_password_hash, generate_password_hash

from ..layers import EMBEDDABLE
from . import Store, area_stats, result_frame
from .models import AREA_CODE_LENGTHS, ROLES, access_tokens, audit_log, ended_sessions, users

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
#: What the audit log records, by action, with the Chinese name pages and exports show.
AUDIT_ACTIONS = {
    "login": "登录",
    "logout": "退出",
    "import": "导入",
    "analysis": "分析",
    "export": "导出",
    "place": "定位",
    "org_edit": "更正组织",
    "org_create": "新增组织",
    "org_delete": "删除组织",
    "visit": "走访",
    "user": "账户",
    "token": "令牌",
    "unlock": "解锁",
    "refused": "拒绝访问",
}
#: Failed logins of one user name from one address before that pair must wait, and how long
#: the wait is then (doubling with every further failure, up to the cap). Attempts refused
#: while waiting are not failures: nobody can keep an account locked by knocking.
MAX_FAILED_LOGINS = 5
LOCK_FIRST = timedelta(minutes=1)
LOCK_CAP = timedelta(minutes=60)
LOGIN_WINDOW = timedelta(hours=24)
#: Failures from one address (over all names) before that address must wait the same way.
MAX_FAILED_PER_ADDRESS = 30
#: The password rule: length, and how many of the four classes (lower, upper, digit, other).
PASSWORD_MIN_LENGTH = 10
PASSWORD_MIN_CLASSES = 3
#: Recovery codes made when a second factor is enrolled.
RECOVERY_CODES = 10


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


@cache
def _common_passwords() -> frozenset[str]:
    lines = (Path(__file__).with_name("common_passwords.txt")).read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip() and not line.startswith("#"))


def check_password(password: str, username: str) -> None:
    """Refuse a password that breaks the rule (the one rule, for the CLI and every form).

    At least ``PASSWORD_MIN_LENGTH`` characters with ``PASSWORD_MIN_CLASSES`` of the four
    classes (lower case, upper case, digits, others), not the user name, not a common password
    (nor one with digits or symbols added to its end).

    Raises
    ------
    AccountError
        Naming what is wrong, in Chinese and English.
    """
    classes = sum(
        (
            any(c.islower() for c in password),
            any(c.isupper() for c in password),
            any(c.isdigit() for c in password),
            any(not c.isalnum() for c in password),
        )
    )
    if len(password) < PASSWORD_MIN_LENGTH or classes < PASSWORD_MIN_CLASSES:
        raise AccountError(
            f"密码至少 {PASSWORD_MIN_LENGTH} 位，且包含大写字母、小写字母、数字、符号中的至少三类 / "
            f"the password needs at least {PASSWORD_MIN_LENGTH} characters and three of: "
            "lower case, upper case, digits, symbols"
        )
    lowered = password.lower()
    stem = lowered.rstrip("0123456789!@#$%^&*.-_+=?~")
    if username.strip().lower() in (lowered, stem) or lowered in _common_passwords() or stem in _common_passwords():
        raise AccountError(
            "密码过于常见或与用户名相同，请换一个 / the password is too common or is the user name: choose another"
        )


def add_user(store: Store, username: str, password: str, role: str, area_code: str | None = None) -> None:
    """Create an account; ``area_code`` is its jurisdiction (see ``JURISDICTION_LEVEL``)."""
    username = username.strip()
    if not username or len(username) > 64:
        raise AccountError("用户名不能为空且不超过 64 字符 / the user name must be 1–64 characters")
    check_password(password, username)
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
    """Change an account and end every session and API token issued to it before."""
    bumped = {**values, "credential_version": users.c.credential_version + 1}
    with store.connect() as conn:
        if conn.execute(update(users).where(users.c.username == username).values(**bumped)).rowcount == 0:
            raise AccountError(f"没有用户 {username} / no user {username!r}")


def set_role(store: Store, username: str, role: str, area_code: str | None = None) -> None:
    """Give a user another role and jurisdiction (their sessions and API tokens end)."""
    _check_jurisdiction(store, role, area_code)
    _change(store, username, role=role, area_code=area_code or None)


def set_active(store: Store, username: str, active: bool) -> None:
    """Disable (or enable again) an account; a disabled user's sessions and API tokens stop working."""
    _change(store, username, active=active)


def set_password(store: Store, username: str, password: str) -> None:
    """Replace a user's password (their sessions and API tokens end; tokens may be issued anew)."""
    check_password(password, username)
    _change(store, username, password_hash=generate_password_hash(password))


def list_users(store: Store) -> list[dict]:
    """Every account without its password hash, by user name."""
    columns = [c for c in users.c if c.name not in ("password_hash", "totp_secret", "totp_last_step", "recovery_codes")]
    with store.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(*columns).order_by(users.c.username))]


_USER_COLUMNS = (users.c.id, users.c.username, users.c.role, users.c.area_code, users.c.credential_version)


def get_user(store: Store, user_id: int) -> dict | None:
    """An active account by id (None if it is missing or disabled)."""
    with store.connect() as conn:
        row = conn.execute(select(*_USER_COLUMNS).where(users.c.id == user_id, users.c.active.is_(True))).first()
    return dict(row._mapping) if row else None


def _failures(store: Store, username: str, address: str | None) -> tuple[int, int, datetime | None]:
    """Failed logins since the last unlock (within ``LOGIN_WINDOW``): of this name from this
    address, of any name from this address, and when the latest of the pair was."""
    with store.connect() as conn:
        unlocked = conn.execute(
            select(func.max(audit_log.c.at)).where(audit_log.c.action == "unlock", audit_log.c.target == username)
        ).scalar()
        since = max(_now() - LOGIN_WINDOW, _aware(unlocked) or _now() - LOGIN_WINDOW)
        failed = (
            audit_log.c.action == "login",
            audit_log.c.ok.is_(False),
            audit_log.c.detail.is_(None),
            audit_log.c.at >= since,
            audit_log.c.address == address,
        )
        pair = audit_log.c.username == username
        row = conn.execute(
            select(
                func.sum(case((pair, 1), else_=0)),
                func.count(),
                func.max(case((pair, audit_log.c.at), else_=None)),
            ).where(*failed)
        ).one()
    return int(row[0] or 0), int(row[1] or 0), _aware(row[2])


def _wait(failures: int, limit: int, latest: datetime | None) -> timedelta:
    """How long after ``latest`` the next attempt must wait: nothing below ``limit`` failures,
    then ``LOCK_FIRST`` doubling with each further failure, at most ``LOCK_CAP``."""
    if failures < limit or latest is None:
        return timedelta(0)
    delay = min(LOCK_FIRST * 2 ** min(failures - limit, 16), LOCK_CAP)
    return max(latest + delay - _now(), timedelta(0))


def login_wait(store: Store, username: str, address: str | None) -> timedelta:
    """How long this user name must wait before another attempt from this address (zero: it may
    try now). Counted from the audit log, so every app instance sees the same."""
    by_pair, by_address, latest = _failures(store, username, address)
    if by_address >= MAX_FAILED_PER_ADDRESS:
        with store.connect() as conn:
            latest_any = conn.execute(
                select(func.max(audit_log.c.at)).where(
                    audit_log.c.action == "login",
                    audit_log.c.ok.is_(False),
                    audit_log.c.detail.is_(None),
                    audit_log.c.address == address,
                )
            ).scalar()
        return max(
            _wait(by_pair, MAX_FAILED_LOGINS, latest), _wait(by_address, MAX_FAILED_PER_ADDRESS, _aware(latest_any))
        )
    return _wait(by_pair, MAX_FAILED_LOGINS, latest)


def unlock(store: Store, username: str, by: str) -> None:
    """Let ``username`` try again at once from every address (failures before now stop counting)."""
    if not any(u["username"] == username for u in list_users(store)):
        raise AccountError(f"没有用户 {username} / no user {username!r}")
    audit(store, by, "unlock", target=username)


@cache
def _dummy_hash() -> str:
    # Checked when the name is unknown, so that an unknown name costs what a known one does.
    return generate_password_hash(secrets.token_hex(16))


def authenticate(
    store: Store, username: str, password: str, address: str | None = None, code: str | None = None
) -> dict | None:
    """The account for a user name and password (and, when it has a second factor, a current
    TOTP or unused recovery ``code``), or None; every attempt is audited.

    Raises
    ------
    LoginRefused
        When this name must wait after failures from this address (the password is then not
        even checked), or a second factor is needed and missing.
    """
    wait = login_wait(store, username, address)
    if wait > timedelta(0):
        audit(store, username, "login", ok=False, address=address, detail="locked")
        minutes = max(1, int(-(-wait.total_seconds() // 60)))
        raise LoginRefused(
            f"登录失败次数过多，请 {minutes} 分钟后再试 / too many failed logins: try again in {minutes} min",
            retry_after=int(wait.total_seconds()) + 1,
        )
    with store.connect() as conn:
        row = conn.execute(
            select(*_USER_COLUMNS, users.c.password_hash, users.c.totp_secret).where(
                users.c.username == username, users.c.active.is_(True)
            )
        ).first()
    ok = check_password_hash(row.password_hash if row else _dummy_hash(), password) and row is not None
    if ok and row.totp_secret:
        if not code:
            audit(store, username, "login", ok=False, address=address, detail="second factor needed")
            raise LoginRefused("请输入身份验证器中的 6 位验证码 / enter the 6-digit code from your authenticator app")
        ok = _second_factor(store, row.id, row.totp_secret, code)
    audit(store, username, "login", ok=ok, address=address)
    if not ok:
        return None
    return {k: v for k, v in row._mapping.items() if k not in ("password_hash", "totp_secret")}


class LoginRefused(AccountError):
    """A sign-in refused before its password counts: wait ``retry_after`` seconds, or give a code."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _second_factor(store: Store, user_id: int, secret: str, code: str) -> bool:
    """Whether ``code`` is the current TOTP (never one accepted before) or an unused recovery code."""
    import pyotp

    code = code.strip().replace(" ", "")
    totp = pyotp.TOTP(secret)
    with store.connect() as conn:
        last, recovery = conn.execute(
            select(users.c.totp_last_step, users.c.recovery_codes).where(users.c.id == user_id)
        ).one()
        now = int(time.time())
        for step in (now // 30 - 1, now // 30, now // 30 + 1):
            if (last is None or step > last) and hmac.compare_digest(totp.at(step * 30), code):
                conn.execute(update(users).where(users.c.id == user_id).values(totp_last_step=step))
                return True
        hashes = (recovery or "").split(",")
        digest = _hash(code.lower())
        if digest in hashes:
            hashes.remove(digest)
            conn.execute(update(users).where(users.c.id == user_id).values(recovery_codes=",".join(hashes)))
            return True
    return False


def enrol_second_factor(store: Store, username: str, issuer: str = "Hongtu 红图") -> tuple[str, list[str]]:
    """Give ``username`` a new TOTP secret and recovery codes; answers the provisioning URI
    (for the authenticator app's QR code) and the codes, shown once and stored only hashed."""
    import pyotp

    secret = pyotp.random_base32()
    codes = [secrets.token_hex(5) for _ in range(RECOVERY_CODES)]
    _change(
        store,
        username,
        totp_secret=secret,
        totp_last_step=None,
        recovery_codes=",".join(_hash(c) for c in codes),
    )
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer), codes


def has_second_factor(store: Store, username: str) -> bool:
    """Whether ``username`` has enrolled a second factor."""
    with store.connect() as conn:
        return bool(conn.execute(select(users.c.totp_secret).where(users.c.username == username)).scalar())


def session_user(store: Store, user_id: int, version: int | None, sid: str | None) -> dict | None:
    """The account a session cookie names, if that session still stands: the account active,
    its credentials unchanged since the session began, the session not ended by signing out."""
    with store.connect(transaction=False) as conn:
        row = conn.execute(
            select(*_USER_COLUMNS, ended_sessions.c.sid.label("ended"))
            .outerjoin(ended_sessions, ended_sessions.c.sid == (sid or ""))
            .where(users.c.id == user_id, users.c.active.is_(True))
        ).first()
    if row is None or row.ended is not None or row.credential_version != version or not sid:
        return None
    return {k: v for k, v in row._mapping.items() if k != "ended"}


def end_session(store: Store, sid: str, lifetime: timedelta) -> None:
    """Record that session ``sid`` ended; forget ended sessions older than any session may live."""
    with store.connect() as conn:
        conn.execute(ended_sessions.delete().where(ended_sessions.c.ended_at < _now() - lifetime))
        if conn.execute(select(ended_sessions.c.sid).where(ended_sessions.c.sid == sid)).first() is None:
            conn.execute(insert(ended_sessions).values(sid=sid, ended_at=_now()))


def recent(store: Store, action: str, username: str | None, window: timedelta) -> int:
    """Audit entries of ``action`` by ``username`` within ``window``: the one counter behind the
    login throttle and the rate limits of renders and exports."""
    with store.connect(transaction=False) as conn:
        return conn.execute(
            select(func.count()).where(
                audit_log.c.action == action, audit_log.c.username == username, audit_log.c.at >= _now() - window
            )
        ).scalar()


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
    version = 1
    if kind == "api":
        owner = next((u for u in list_users(store) if u["username"] == username), None)
        if owner is None:
            raise AccountError(f"没有用户 {username} / no user {username!r}")
        version = owner["credential_version"]
    if kind == "embed":
        layers = layers or ["orgs", "community"]
        unknown = sorted(set(layers) - set(EMBEDDABLE))
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
                credential_version=version,
            )
        )
    return token


def publish_embed(
    store: Store, username: str, area: str | None, layers: list[str], days: float | None, label: str = ""
) -> str:
    """Publish a read-only embed link of ``layers`` over ``area`` (None: the city), audited;
    answers its token (the admin page and ``hongtu token embed`` both publish through here)."""
    if area:
        try:
            area_stats.level_of(area)
        except ValueError:
            raise AccountError(f"区划代码无效 {area} / not an area code: {area}") from None
    if not layers:
        raise AccountError("至少选择一个图层 / choose at least one layer")
    token = issue_token(store, "embed", username, area_code=area, layers=layers, label=label, days=days)
    audit(store, username, "token", target=f"embed {area or 'city'} {','.join(layers)}", detail=label)
    return token


def resolve_token(store: Store, token: str, kind: str) -> dict | None:
    """The live token (not revoked, not expired) of ``kind``; for an ``api`` token, its active
    user instead. None for any other string."""
    owner = users.c.active.is_(True) if kind == "api" else True
    query = (
        select(
            access_tokens,
            users.c.id.label("user_id"),
            users.c.role,
            users.c.area_code.label("user_area"),
            users.c.credential_version.label("user_version"),
        )
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
        # Issued before the user's password, role or state last changed: no longer theirs.
        if found["user_id"] is None or found["credential_version"] != found["user_version"]:
            return None
        return {
            "id": found["user_id"],
            "username": found["username"],
            "role": found["role"],
            "area_code": found["user_area"],
            "credential_version": found["user_version"],
        }
    found["layers"] = found["layers"].split(",") if found["layers"] else []
    return found


def revoke_token(store: Store, token_id: int) -> None:
    """Revoke a token at once (it stays listed, marked revoked)."""
    # An id no database integer can hold names no token (and must not reach the driver).
    with store.connect() as conn:
        done = (
            0 < token_id < 2**63
            and conn.execute(
                update(access_tokens)
                .where(access_tokens.c.id == token_id, access_tokens.c.revoked_at.is_(None))
                .values(revoked_at=_now())
            ).rowcount
        )
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
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}: declare it in AUDIT_ACTIONS")
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
        frame = result_frame(result)
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame
