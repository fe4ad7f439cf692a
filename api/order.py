"""Order routes: the orders of customers the caller may see, with payment plan and payments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentActor, RecordId, SessionDep
from domain.order import service as orders
from domain.order.schemas import (
    InstalmentRead,
    OrderDetail,
    OrderPage,
    OrderQuery,
    OrderRead,
    PaymentRead,
)

router = APIRouter(prefix="/api/orders", tags=["orders"])


@router.get("")
async def list_orders(
    query: Annotated[OrderQuery, Query()], actor: CurrentActor, session: SessionDep
) -> OrderPage:
    rows, total = await orders.search(session, actor=actor, query=query)
    return OrderPage(
        items=[OrderRead.model_validate(r) for r in rows],
        total=total,
        page=query.page,
        size=query.size,
    )


@router.get("/{order_id}")
async def get_order(order_id: RecordId, actor: CurrentActor, session: SessionDep) -> OrderDetail:
    order = await orders.get(session, actor=actor, order_id=order_id)
    return OrderDetail(
        **OrderRead.model_validate(order).model_dump(),
        instalments=[InstalmentRead.model_validate(i)
                     for i in await orders.instalments(session, order.id)],
        payments=[PaymentRead.model_validate(p) for p in await orders.payments(session, order.id)],
    )
