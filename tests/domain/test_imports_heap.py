"""An import pass freezes the heap between chunks and always leaves it unfrozen."""

from __future__ import annotations

import gc

import pytest

from domain.imports import heap


def test_what_exists_after_a_chunk_is_frozen_until_the_pass_ends() -> None:
    assert gc.get_freeze_count() == 0
    with heap.settled_between_chunks() as settle:
        kept = [{"key": n} for n in range(1000)]
        settle()
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0


def test_a_failing_pass_unfreezes_the_heap() -> None:
    with pytest.raises(RuntimeError), heap.settled_between_chunks() as settle:
        settle()
        raise RuntimeError("the chunk failed")
    assert gc.get_freeze_count() == 0
