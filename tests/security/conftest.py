"""Fixtures the security tests share with the rest of the suite: the small city of test_intake
(one district, street and community) and the busiest community and street of the analysed
demo city."""

from ..test_access import community  # noqa: F401  (a fixture, shared)
from ..test_intake import loaded  # noqa: F401  (a fixture, shared)
from ..test_reports import street  # noqa: F401  (a fixture, shared)
