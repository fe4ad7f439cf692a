"""One order: what the ERP made of it (booking, shipment, invoice) and how it is being paid.

Read only: the order, its instalments and payments change by the ERP's signed events through
the order's workflow, never from a page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.pages.base import Page, record_id, view
from domain import user
from domain.contract.models import Contract
from domain.customer import Customer
from domain.db import utcnow
from domain.order import service as orders
from domain.order.models import InstalmentStatus

router = APIRouter(include_in_schema=False)


@router.get("/orders/{order_id}")
async def order_page(request: Request, order_id: str) -> Response:
    async def body(page: Page) -> Response:
        session = page.session
        row = await orders.get(session, actor=page.me, order_id=record_id(order_id, "order_id"))
        plan = await orders.instalments(session, row.id)
        today = utcnow().astimezone(page.zone).date()
        owner = await session.get(user.User, row.owner_id) if row.owner_id else None
        return page.render(
            "orders/detail.html",
            row=row,
            customer_row=await session.get(Customer, row.customer_id),
            contract=await session.get(Contract, row.contract_id) if row.contract_id else None,
            owner=owner,
            plan=plan,
            late=lambda i: i.status == InstalmentStatus.overdue.value
            or (i.status == InstalmentStatus.open.value and i.due_on < today),
            payments=await orders.payments(session, row.id),
            owed=row.amount - row.paid_amount,
        )

    return await view(request, body)
