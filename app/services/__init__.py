"""Use cases that join the store and the pure analysis in ``geo/``."""
