"""The sessionizer's GC setting: raised while it runs, the process's own restored after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from services.sessionizer.worker import GC_FIRST_THRESHOLD, fewer_gc_passes


@pytest.fixture(autouse=True)
def _restore_thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.set_threshold(*before)


def test_raises_the_first_threshold_and_restores_all_three() -> None:
    gc.set_threshold(700, 11, 12)
    with fewer_gc_passes():
        assert gc.get_threshold() == (GC_FIRST_THRESHOLD, 11, 12)
    assert gc.get_threshold() == (700, 11, 12)


def test_never_lowers_a_higher_threshold() -> None:
    gc.set_threshold(GC_FIRST_THRESHOLD * 2, 10, 10)
    with fewer_gc_passes():
        assert gc.get_threshold()[0] == GC_FIRST_THRESHOLD * 2


def test_restores_after_an_error() -> None:
    gc.set_threshold(700, 10, 10)
    with pytest.raises(RuntimeError), fewer_gc_passes():
        raise RuntimeError("store down")
    assert gc.get_threshold() == (700, 10, 10)
