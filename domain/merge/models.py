"""The merges table and the shapes the duplicate review and merge exchange.

A merge row is the undo record: which customers were absorbed, exactly which rows moved from
each of them (ids per table), and the survivor's changed fields before and after, so an undo
can put everything back and can tell when the survivor has been edited since.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.customer import Kind
from domain.db import Base, utcnow
from domain.schema import DbId, Input


class Merge(Base):
    __tablename__ = "merges"
    __table_args__ = (Index("ix_merges_survivor", "survivor_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20), default="customer")
    survivor_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    absorbed_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    choices: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """Which customer each field's value came from, as decided (asked for or filled in)."""
    before: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The survivor's changed fields before the merge (JSON-plain values)."""
    after: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The same fields right after it: an undo refuses when the survivor no longer has them."""
    moved: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """{absorbed id: {"table.column": [row ids]}}: exactly what an undo moves back."""
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    undone_at: Mapped[datetime | None]
    undone_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class MergeRequest(Input):
    """Merge `absorbed_ids` into `survivor_id`. `fields` picks, per field, the customer whose
    value wins (`custom.<key>` for a custom field); every other field keeps the survivor's
    value, or the first absorbed customer's where the survivor's is empty. Tags are united."""

    survivor_id: DbId
    absorbed_ids: Annotated[list[DbId], Field(min_length=1, max_length=20)]
    fields: Annotated[
        dict[Annotated[str, Field(max_length=80)], DbId], Field(max_length=60)
    ] = Field(default_factory=dict)


class MergeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    entity: str
    survivor_id: int
    absorbed_ids: list[int]
    choices: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    moved: dict[str, Any]
    actor_id: int | None
    actor_name: str
    created_at: datetime
    undo_until: datetime
    undone_at: datetime | None
    undone_by_id: int | None


class Key(StrEnum):
    """Why customers look like one: the duplicate guard's keys, strongest first."""

    credit_code = "credit_code"
    phone = "phone"
    email = "email"
    name = "name"


class Reason(BaseModel):
    """One piece of evidence: these customers share `value`, or their names are `score`%
    alike (100 when the folded names are the same)."""

    key: Key
    customer_ids: list[int]
    value: str | None = None
    score: float | None = None


class Member(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: Kind
    name: str
    credit_code: str | None
    phone: str | None
    email: str | None
    city: str | None
    owner_id: int | None
    stage: str
    purchase_count: int
    last_purchase_on: date | None
    created_at: datetime
    updated_at: datetime


class DuplicateGroup(BaseModel):
    customers: list[Member]
    reasons: list[Reason]


class DuplicatePage(BaseModel):
    items: list[DuplicateGroup]
    total: int
    page: int
    size: int


class UndoResult(BaseModel):
    merge: MergeRead
    moved_back: dict[str, int]
    """Rows moved back per "table.column"; fewer than moved when some were deleted since."""
