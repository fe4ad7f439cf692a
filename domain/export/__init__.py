"""Export of list views to .xlsx or .csv: the list's own query, streamed in batches."""

from domain.export.cells import escape
from domain.export.columns import Entity
from domain.export.service import Export, Format, Labels, start, stream

__all__ = ["Entity", "Export", "Format", "Labels", "escape", "start", "stream"]
