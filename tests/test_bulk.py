"""The collector pause around imports and analysis runs gives the collector back as it found it."""

import gc

import pytest

from app.bulk import collector_paused


def test_paused_inside_and_restored_after_nesting_and_errors():
    assert gc.isenabled()
    with collector_paused():
        assert not gc.isenabled()
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner use did not pause it, so it does not resume it
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("an import that fails")
    assert gc.isenabled()


def test_a_collector_paused_by_the_caller_stays_paused():
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
