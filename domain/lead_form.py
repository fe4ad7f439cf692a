"""Public web forms that create leads: which fields, which source and campaign they tag."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import Base, Timestamped


class LeadForm(Base, Timestamped):
    __tablename__ = "lead_forms"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    fields: Mapped[list[str]]
    required: Mapped[list[str]]
    source: Mapped[str | None] = mapped_column(String(60))
    campaign: Mapped[str | None] = mapped_column(String(100))
    thank_you: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
