"""Personal data and how it is masked, in SQL, for roles without need to see it.

A party organization's secretary and an instructor are people: their names and phones are
shown whole only to a store that may show contacts (``Store.contacts``).
"""

from __future__ import annotations

from .backends import Backend


def _masked_name(backend: Backend, sql: str) -> str:
    """A person's name with all but its first character hidden (张三丰 → 张**)."""
    stars = backend.repeat("*", f"length({sql}) - 1")
    return f"CASE WHEN {sql} IS NULL OR {sql} = '' THEN NULL ELSE substr({sql}, 1, 1) || {stars} END"


def _masked_phone(backend: Backend, sql: str) -> str:
    """A phone number with its middle hidden (13812345678 → 138****5678)."""
    return (
        f"CASE WHEN {sql} IS NULL OR {sql} = '' THEN NULL "
        f"WHEN length({sql}) >= 8 THEN substr({sql}, 1, 3) || '****' || substr({sql}, length({sql}) - 3) "
        f"ELSE {backend.repeat('*', f'length({sql})')} END"
    )


#: Personal properties and how they are masked, in SQL, for a store that may not show them.
PERSONAL = {"secretary": _masked_name, "secretary_phone": _masked_phone, "instructor_phone": _masked_phone}


def shown(store, name: str, sql: str) -> str:
    """The SQL of personal property ``name`` (computed by ``sql``) as ``store`` may show it."""
    return sql if store.contacts else PERSONAL[name](store.backend, sql)
