"""Merging duplicate customers: the review list of likely duplicates, the merge itself and its
undo. `duplicates` and `service` are imported by name, so `domain.tables` can load the models
without the service (which reads the whole schema) importing it back."""

from domain.merge.models import (
    DuplicateGroup,
    DuplicatePage,
    Merge,
    MergeRead,
    MergeRequest,
    UndoResult,
)

__all__ = [
    "DuplicateGroup",
    "DuplicatePage",
    "Merge",
    "MergeRead",
    "MergeRequest",
    "UndoResult",
]
