"""Purchases: one row per past transaction of a customer, the history RFM and the transaction
summary (count, total, first and last purchase, average order value) are built from.

A purchase is known by its customer and its reference (the order number, or date, amount and
product when there is none), unique together, so bringing the same history in twice records
nothing twice; the summary is folded exactly when a purchase row is inserted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain import audit, normalize, timeline
from domain.access import Actor
from domain.customer.service import record_purchase
from domain.db import Base, utcnow
from domain.schema import Input, Money

ENTITY = "purchase"


class Purchase(Base):
    __tablename__ = "purchases"
    __table_args__ = (
        UniqueConstraint("customer_id", "reference", name="uq_purchases_customer_reference"),
        Index("ix_purchases_customer_on", "customer_id", "purchased_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    purchased_on: Mapped[date]
    amount: Mapped[Decimal]
    product: Mapped[str | None] = mapped_column(String(200))
    order_number: Mapped[str | None] = mapped_column(String(100))
    reference: Mapped[str] = mapped_column(String(400))
    """What makes this purchase itself: the order number, else date, amount and product."""
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PurchaseCreate(Input):
    purchased_on: date
    amount: Money
    product: Annotated[str, Field(max_length=200)] | None = None
    order_number: Annotated[str, Field(max_length=100)] | None = None


class PurchaseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    purchased_on: date
    amount: Decimal
    product: str | None
    order_number: str | None
    reference: str


def fields_of(data: PurchaseCreate) -> dict[str, Any]:
    """The stored form of a purchase and its reference."""
    product = normalize.text(data.product)
    order_number = normalize.text(data.order_number)
    amount = data.amount.quantize(Decimal("0.01"))
    reference = (
        f"order:{order_number}" if order_number
        else f"row:{data.purchased_on.isoformat()}|{amount}|{product or ''}"
    )
    return {"purchased_on": data.purchased_on, "amount": amount, "product": product,
            "order_number": order_number, "reference": reference}


async def record(
    session: AsyncSession, *, actor: Actor, customer_id: int, fields: dict[str, Any],
    import_id: int | None = None, note: dict[str, Any] | None = None,
) -> Purchase:
    """Store one purchase and fold it into the customer's summary, audited, on the timeline."""
    row = Purchase(customer_id=customer_id, import_id=import_id, **fields)
    session.add(row)
    await session.flush()
    await record_purchase(session, customer_id=customer_id, on=row.purchased_on,
                          amount=row.amount)
    audit.record(session, actor=actor, action="create", entity=ENTITY, entity_id=row.id,
                 after=PurchaseRead.model_validate(row).model_dump(exclude={"id"}), note=note)
    timeline.add(session, customer_id=customer_id, kind="purchase.recorded", actor=actor,
                 at=datetime.combine(row.purchased_on, time(), tzinfo=UTC),
                 summary=f"{row.product or ''} {row.amount}".strip(), ref=(ENTITY, row.id),
                 detail={"order_number": row.order_number})
    return row
