"""Tables of the golden customer profile: customers, their tags and contacts."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import DDL, ForeignKey, Index, String, Text, event, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from domain.db import Base, Timestamped


class Kind(StrEnum):
    company = "company"
    person = "person"


class Stage(StrEnum):
    lead = "lead"
    prospect = "prospect"
    customer = "customer"
    churned = "churned"


class Size(StrEnum):
    micro = "1-9"
    small = "10-49"
    medium = "50-199"
    large = "200-999"
    enterprise = "1000+"


class Gender(StrEnum):
    male = "male"
    female = "female"
    other = "other"


class DecisionRole(StrEnum):
    decision_maker = "decision_maker"
    influencer = "influencer"
    user = "user"
    gatekeeper = "gatekeeper"


LIVE = text("deleted_at IS NULL")
"""Partial indexes over live rows: every list filters on this."""


def tier_of(custom: dict[str, Any] | None) -> str | None:
    """The customer tier rules look at (assignment, dispatch, approval chains): the custom field
    `tier`, whether a select, text or number."""
    value = (custom or {}).get("tier")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value).strip() or None


class Customer(Base, Timestamped):
    __tablename__ = "customers"
    # Lists filter live rows and sort by updated_at (the default): the ix_customers_live_*
    # indexes cover exactly those rows in that order. ix_customers_owner also covers archived
    # rows, which the users foreign key's ON DELETE SET NULL must find. On PostgreSQL
    # ix_customers_name_search (pg_trgm) serves `name LIKE '%…%'` for three characters or more
    # and the pattern_ops ix_customers_name_key serves `name_key LIKE '…%'`.
    __table_args__ = (
        Index(
            "ix_customers_name_key", "name_key", postgresql_ops={"name_key": "varchar_pattern_ops"}
        ),
        Index(
            "ix_customers_name_search",
            "name",
            sqlite_where=LIVE,
            postgresql_where=LIVE,
            postgresql_using="gin",
            postgresql_ops={"name": "public.gin_trgm_ops"},
        ),
        Index("ix_customers_credit_code", "credit_code"),
        Index("ix_customers_phone", "phone"),
        Index("ix_customers_email", "email"),
        Index("ix_customers_owner", "owner_id", "id"),
        Index(
            "ix_customers_live_updated",
            "updated_at",
            "id",
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        Index(
            "ix_customers_live_owner",
            "owner_id",
            "updated_at",
            "id",
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        Index(
            "ix_customers_live_stage",
            "stage",
            "updated_at",
            "id",
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        Index(
            "ix_customers_live_city",
            "city",
            "updated_at",
            "id",
            sqlite_where=LIVE,
            postgresql_where=LIVE,
        ),
        Index("ix_customers_parent", "parent_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200))
    """Folded name for duplicate matching and fast prefix search; the display name is kept."""

    credit_code: Mapped[str | None] = mapped_column(String(18))
    industry: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[str | None] = mapped_column(String(10))
    registered_address: Mapped[str | None] = mapped_column(String(300))
    website: Mapped[str | None] = mapped_column(String(300))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))

    gender: Mapped[str | None] = mapped_column(String(10))
    birthday: Mapped[date | None]
    wechat_id: Mapped[str | None] = mapped_column(String(40))
    member_level: Mapped[str | None] = mapped_column(String(40))

    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    province: Mapped[str | None] = mapped_column(String(40))
    city: Mapped[str | None] = mapped_column(String(40))

    source: Mapped[str | None] = mapped_column(String(60))
    referrer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    service_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    stage: Mapped[str] = mapped_column(String(20), default=Stage.prospect.value)
    notes: Mapped[str | None] = mapped_column(Text)
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)

    invoice_title: Mapped[str | None] = mapped_column(String(200))
    """Billing details (开票信息) as the ERP needs them; the tax id is the credit code."""
    billing_address: Mapped[str | None] = mapped_column(String(300))
    billing_phone: Mapped[str | None] = mapped_column(String(40))
    bank_name: Mapped[str | None] = mapped_column(String(100))
    bank_account: Mapped[str | None] = mapped_column(String(40))

    first_purchase_on: Mapped[date | None]
    last_purchase_on: Mapped[date | None]
    purchase_count: Mapped[int] = mapped_column(default=0)
    total_amount: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")

    deleted_at: Mapped[datetime | None]
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    """Set when a merge absorbed this (archived) customer: old links find the survivor. No ON
    DELETE rule: customers are archived, never deleted, and SQLite adds a column in place only
    with a plain reference (rebuilding `customers` would cascade-delete its contacts, deals …)."""

    tag_rows: Mapped[list[CustomerTag]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="CustomerTag.tag"
    )

    @property
    def tags(self) -> list[str]:
        return [row.tag for row in self.tag_rows]

    @property
    def tier(self) -> str | None:
        return tier_of(self.custom)

    @property
    def average_order_value(self) -> Decimal | None:
        if not self.purchase_count:
            return None
        return (self.total_amount / self.purchase_count).quantize(Decimal("0.01"))


# create_all (tests build schemas with it) needs pg_trgm for ix_customers_name_search's opclass;
# the migration installs it the same way.
event.listen(
    Customer.__table__,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public").execute_if(dialect="postgresql"),
)


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    __table_args__ = (Index("ix_customer_tags_tag", "tag", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(40), primary_key=True)


class Contact(Base, Timestamped):
    __tablename__ = "contacts"
    __table_args__ = (
        Index("ix_contacts_customer", "customer_id", "id"),
        Index("ix_contacts_mobile", "mobile"),
        Index("ix_contacts_email", "email"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(100))
    department: Mapped[str | None] = mapped_column(String(100))
    mobile: Mapped[str | None] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    wechat_id: Mapped[str | None] = mapped_column(String(40))
    birthday: Mapped[date | None]
    reports_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("contacts.id", ondelete="SET NULL")
    )
    decision_role: Mapped[str | None] = mapped_column(String(20))
    custom: Mapped[dict[str, Any]] = mapped_column(default=dict)
