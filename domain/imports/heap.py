"""Keep the cyclic garbage collector off what a pass over a large file has built so far.

A pass keeps, from chunk to chunk, an index of every key and company name it has met: hundreds
of thousands of objects that live until the pass ends. Python's full collections scan every
tracked object, and as the index grows they run again and again, costing a 100,000-row import
seconds. Freezing the heap after each chunk moves what exists into the permanent generation,
which collections skip; reference counting still frees whatever is dropped, and the heap is
unfrozen when the pass ends, so later cycles are collected as usual.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def settled_between_chunks() -> Iterator[Callable[[], None]]:
    """Yields what to call after each chunk; unfreezes on the way out, however it ends."""
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()
