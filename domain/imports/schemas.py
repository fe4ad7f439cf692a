"""Import schemas: the options a user picks, what they read back, and workflow arguments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from domain.imports.columns import Entity
from domain.imports.models import Outcome, Status, Strategy
from domain.schema import DbId, Input

Header = Annotated[str, Field(max_length=200)]


class ImportOptions(Input):
    """Chosen before the check; changing them means checking again."""

    sheet: Annotated[str, Field(max_length=100)] | None = None
    mapping: Annotated[dict[Header, Annotated[str, Field(max_length=80)]], Field(
        max_length=300)] | None = None
    """{header: field key}; "" leaves a column out. Omitted: the suggested mapping."""
    strategy: Strategy = Strategy.skip
    all_or_nothing: bool = False
    save_mapping_as: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    confirm: bool = False
    """Write right after the check instead of waiting for a confirmation (still no write
    when an all-or-nothing import has invalid rows)."""


class ImportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    entity: Entity
    filename: str
    format: str
    size_bytes: int
    sheets: list[str]
    sheet: str
    header_row: int
    headers: list[str]
    mapping: dict[str, Any]
    strategy: Strategy
    all_or_nothing: bool
    status: Status
    error: str | None
    total_rows: int
    checked_rows: int
    new_rows: int
    matched_rows: int
    invalid_rows: int
    done_rows: int
    created_count: int
    updated_count: int
    skipped_count: int
    error_count: int
    actor_id: int | None
    actor_name: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class ProblemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    row: int
    column: str | None
    value: str | None
    message: str


class RecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    row: int
    outcome: Outcome
    entity_id: int | None
    matched_by: str | None


class MappingSave(Input):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    mapping: Annotated[dict[Header, Annotated[str, Field(max_length=80)]], Field(max_length=300)]


class MappingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    entity: Entity
    name: str
    mapping: dict[str, Any]
    updated_at: datetime


# Workflow and activity arguments: ids only.


class ImportStart(BaseModel):
    import_id: DbId
    confirm: bool = False
    leads: bool = False
    """A lead import: the written leads' workflows are started at the end."""


class ImportStep(BaseModel):
    import_id: int
    strategy: Strategy | None = None


class CheckSummary(BaseModel):
    total_rows: int
    new_rows: int
    matched_rows: int
    invalid_rows: int
    all_or_nothing: bool


class WriteProgress(BaseModel):
    done: bool
    done_rows: int


class ImportEnd(BaseModel):
    import_id: int
    status: Status
    error: str | None = None


class Decision(BaseModel):
    """The user's answer to a checked import: write it, or check again with new options."""

    confirm: bool = False
    recheck: bool = False
