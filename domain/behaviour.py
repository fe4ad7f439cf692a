"""Behaviour events (page views, form views, mail opens …) that score leads and raise alerts."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from domain.db import Base, utcnow


class BehaviourKind(StrEnum):
    page_view = "page_view"
    form_view = "form_view"
    email_open = "email_open"
    email_click = "email_click"
    event_attendance = "event_attendance"
    form_submit = "form_submit"


class BehaviourEvent(Base):
    __tablename__ = "behaviour_events"
    __table_args__ = (
        Index("ix_behaviour_lead", "lead_id", "kind", "at"),
        Index("ix_behaviour_customer", "customer_id", "kind", "at"),
        Index("ix_behaviour_visitor", "visitor_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    url: Mapped[str | None] = mapped_column(String(2000))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    visitor_id: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    props: Mapped[dict[str, Any]] = mapped_column(default=dict)
