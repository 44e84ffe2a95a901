"""The small city the security tests attack: one district, street and community (see test_intake)."""

from ..test_intake import loaded  # noqa: F401  (a fixture, shared)
