"""Import tables: the import itself with its progress, every problem found, the per-row ledger,
and the column mappings users save for their next file."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import Base, Timestamped


class Status(StrEnum):
    uploaded = "uploaded"
    checking = "checking"
    checked = "checked"
    importing = "importing"
    done = "done"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = frozenset({Status.done, Status.failed, Status.cancelled})


class Strategy(StrEnum):
    """What a row that matches an existing record does to it."""

    skip = "skip"
    fill_empty = "fill_empty"
    overwrite = "overwrite"


class Outcome(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"
    skipped = "skipped"
    invalid = "invalid"


class Import(Base, Timestamped):
    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    filename: Mapped[str] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(10))
    size_bytes: Mapped[int]
    sheets: Mapped[list[str]] = mapped_column(default=list)
    sheet: Mapped[str] = mapped_column(String(100))
    header_row: Mapped[int]
    headers: Mapped[list[str]] = mapped_column(default=list)
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    strategy: Mapped[str] = mapped_column(String(20), default=Strategy.skip.value)
    all_or_nothing: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default=Status.uploaded.value)
    error: Mapped[str | None] = mapped_column(Text)

    total_rows: Mapped[int] = mapped_column(default=0)
    """Data rows in the sheet (blank rows not counted), known after the upload."""
    checked_rows: Mapped[int] = mapped_column(default=0)
    new_rows: Mapped[int] = mapped_column(default=0)
    matched_rows: Mapped[int] = mapped_column(default=0)
    """Rows that match a record in the database or an earlier row of the file."""
    invalid_rows: Mapped[int] = mapped_column(default=0)

    done_rows: Mapped[int] = mapped_column(default=0)
    resume_after_row: Mapped[int] = mapped_column(default=0)
    """Sheet row number up to which rows are written; moves in the same transaction as them."""
    created_count: Mapped[int] = mapped_column(default=0)
    updated_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    error_count: Mapped[int] = mapped_column(default=0)

    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(100))
    finished_at: Mapped[datetime | None]


class ImportProblem(Base):
    __tablename__ = "import_problems"
    __table_args__ = (Index("ix_import_problems_import_row", "import_id", "row", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("imports.id", ondelete="CASCADE"))
    row: Mapped[int]
    column: Mapped[str | None] = mapped_column(String(200))
    value: Mapped[str | None] = mapped_column(String(500))
    message: Mapped[str] = mapped_column(String(500))


class ImportRow(Base):
    """What one sheet row did; written with the row's record, so a resumed import skips it."""

    __tablename__ = "import_rows"
    __table_args__ = (Index("ix_import_rows_entity", "import_id", "outcome", "entity_id"),)

    import_id: Mapped[int] = mapped_column(
        ForeignKey("imports.id", ondelete="CASCADE"), primary_key=True
    )
    row: Mapped[int] = mapped_column(primary_key=True)
    outcome: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int | None]
    matched_by: Mapped[str | None] = mapped_column(String(40))


class ImportMapping(Base, Timestamped):
    """A column mapping saved under a name, offered again for the next file of that entity."""

    __tablename__ = "import_mappings"
    __table_args__ = (UniqueConstraint("entity", "name", name="uq_import_mappings_entity_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(100))
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
