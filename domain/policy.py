"""Policies are versioned data: each publish adds a version; workflows pin the one they start on."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import Base, utcnow


class PolicyKind(StrEnum):
    assignment = "assignment"
    lead_sla = "lead_sla"
    calendar = "calendar"
    pool = "pool"
    scoring = "scoring"
    lead = "lead"


class Policy(Base):
    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("kind", "name", "version", name="uq_policies_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(60), default="default")
    version: Mapped[int]
    data: Mapped[dict[str, Any]]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
