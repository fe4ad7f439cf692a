"""Order service functions: open an order from a signed contract, fold in ERP events, read.

Every write is audited and, where the customer's story changes, put on their timeline, in the
caller's transaction. Writes driven by the workflow are idempotent: a retry finds its own work.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, customer, timeline
from domain.access import Actor, Role, Scope, Source
from domain.contract import Contract, ContractStatus
from domain.customer import Contact, Customer
from domain.db import utcnow
from domain.erp import (
    ErpContact,
    ErpCustomer,
    ErpEvent,
    ErpInstalment,
    ErpInvoiceRequest,
    ErpLine,
    ErpOrder,
    OrderInvoiced,
    OrderShipped,
    PaymentReceived,
    customer_code,
)
from domain.errors import Conflict, Invalid, NotFound
from domain.order.models import Instalment, InstalmentStatus, Order, OrderStatus, Payment
from domain.order.rules import OrderPolicy
from domain.order.schemas import OrderQuery
from domain.quote.models import Quote

ENTITY = "order"
ERP = Actor(user_id=None, name="ERP", role=Role.admin, source=Source.system)
"""Who changed an order when the ERP reported something."""


def order_number(order_id: int, ordered_on: date) -> str:
    return f"SO-{ordered_on.year}-{order_id:06d}"


def _terms(
    contract: Contract, *, signed_on: date, policy: OrderPolicy
) -> list[tuple[date, Decimal]]:
    """The contract's payment plan as (due_on, amount), checked to add up to its amount."""
    if not contract.payment_terms:
        due = date.fromordinal(signed_on.toordinal() + policy.default_due_days)
        return [(due, contract.amount)]
    plan: list[tuple[date, Decimal]] = []
    for index, term in enumerate(contract.payment_terms):
        field = f"payment_terms.{index}"
        try:
            due_on = date.fromisoformat(str(term["due_on"]))
            amount = Decimal(str(term["amount"]))
        except (KeyError, TypeError, ValueError, InvalidOperation):
            raise Invalid(
                "each term needs an ISO due_on and a numeric amount", field=field
            ) from None
        if not amount.is_finite() or amount <= 0:
            raise Invalid("an instalment must be a positive amount", field=f"{field}.amount")
        plan.append((due_on, amount))
    total = sum((amount for _, amount in plan), Decimal("0"))
    if total != contract.amount:
        raise Invalid(
            f"the payment terms add up to {total}, the contract is for {contract.amount}",
            field="payment_terms",
        )
    return sorted(plan, key=lambda term: term[0])


async def open_from_contract(
    session: AsyncSession, *, contract_id: int, policy: OrderPolicy, today: date, signed_on: date
) -> Order:
    """The order of a signed contract with its instalments; the same order again on a retry
    (one order per contract). Counts as a purchase in the customer's transaction summary."""
    existing = await session.scalar(select(Order).where(Order.contract_id == contract_id))
    if existing is not None:
        return existing
    contract = await session.get(Contract, contract_id, with_for_update=True)
    if contract is None:
        raise NotFound("no such contract", field="contract_id")
    if contract.status != ContractStatus.signed.value:
        raise Conflict(
            f"contract {contract.number} is {contract.status}, not signed", field="contract_id"
        )
    plan = _terms(contract, signed_on=signed_on, policy=policy)
    order = Order(
        number=f"pending-{contract.id}",
        contract_id=contract.id,
        customer_id=contract.customer_id,
        owner_id=contract.owner_id,
        amount=contract.amount,
        currency=contract.currency,
        ordered_on=today,
        status=OrderStatus.pending.value,
    )
    session.add(order)
    await session.flush()
    order.number = order_number(order.id, today)
    for seq, (due_on, amount) in enumerate(plan, start=1):
        session.add(Instalment(order_id=order.id, seq=seq, due_on=due_on, amount=amount))
    await customer.record_purchase(
        session, customer_id=order.customer_id, on=today, amount=order.amount
    )
    await session.flush()
    after = {
        "number": order.number,
        "contract_id": contract.id,
        "amount": order.amount,
        "payment_plan": [[d.isoformat(), str(a)] for d, a in plan],
    }
    actor = Actor(user_id=None, name="workflow", role=Role.admin, source=Source.workflow)
    audit.record(session, actor=actor, action="create", entity=ENTITY, entity_id=order.id,
                 after=after)
    timeline.add(
        session,
        customer_id=order.customer_id,
        kind="order.created",
        actor=actor,
        summary=f"{order.number} · {order.currency} {order.amount}",
        ref=(ENTITY, order.id),
        detail={"contract": contract.number},
    )
    return order


async def locked(session: AsyncSession, order_id: int) -> Order:
    order = await session.get(Order, order_id, with_for_update=True)
    if order is None:
        raise NotFound("no such order", field="order_id")
    return order


async def instalments(session: AsyncSession, order_id: int) -> list[Instalment]:
    """In the order payments are allocated: earliest due first."""
    rows = await session.scalars(
        select(Instalment)
        .where(Instalment.order_id == order_id)
        .order_by(Instalment.due_on, Instalment.seq)
    )
    return list(rows.all())


async def by_number(session: AsyncSession, number: str) -> Order | None:
    return await session.scalar(select(Order).where(Order.number == number))


async def has_orders(session: AsyncSession, *, customer_id: int) -> bool:
    """A customer with an order is known to the ERP, so changes to it must reach the ERP."""
    found = await session.scalar(select(Order.id).where(Order.customer_id == customer_id).limit(1))
    return found is not None


# --- what goes to the ERP -----------------------------------------------------------------


async def erp_customer(session: AsyncSession, *, customer_id: int) -> ErpCustomer:
    row = await session.get(Customer, customer_id)
    if row is None:
        raise NotFound("no such customer", field="customer_id")
    contacts = await session.scalars(
        select(Contact).where(Contact.customer_id == customer_id).order_by(Contact.id)
    )
    return ErpCustomer(
        code=customer_code(row.id),
        name=row.name,
        kind=row.kind,
        tax_id=row.credit_code,
        invoice_title=row.invoice_title or row.name,
        billing_address=row.billing_address,
        billing_phone=row.billing_phone,
        bank_name=row.bank_name,
        bank_account=row.bank_account,
        contacts=[
            ErpContact(name=c.name, title=c.title, mobile=c.mobile, phone=c.phone, email=c.email)
            for c in contacts
        ],
    )


async def erp_order(session: AsyncSession, order: Order) -> ErpOrder:
    contract = await session.get(Contract, order.contract_id) if order.contract_id else None
    quote = await session.get(Quote, contract.quote_id) if contract and contract.quote_id else None
    return ErpOrder(
        number=order.number,
        contract_number=contract.number if contract else None,
        customer=await erp_customer(session, customer_id=order.customer_id),
        lines=[
            ErpLine(
                description=line.description,
                quantity=line.quantity,
                unit=line.unit,
                unit_price=line.unit_price,
                line_total=line.line_total,
            )
            for line in (quote.lines if quote else [])
        ],
        amount=order.amount,
        currency=order.currency,
        ordered_on=order.ordered_on,
        payment_plan=[
            ErpInstalment(seq=i.seq, due_on=i.due_on, amount=i.amount)
            for i in await instalments(session, order.id)
        ],
    )


async def erp_invoice_request(session: AsyncSession, order: Order) -> ErpInvoiceRequest:
    return ErpInvoiceRequest(
        order_number=order.number,
        amount=order.amount,
        currency=order.currency,
        customer=await erp_customer(session, customer_id=order.customer_id),
    )


# --- what the workflow records ------------------------------------------------------------


def _timeline(session: AsyncSession, order: Order, kind: str, summary: str,
              detail: dict[str, Any] | None = None, actor: Actor = ERP) -> None:
    timeline.add(session, customer_id=order.customer_id, kind=kind, actor=actor,
                 summary=summary, ref=(ENTITY, order.id), detail=detail)


def record_booking(session: AsyncSession, order: Order, *, erp_order_id: str) -> None:
    if order.erp_order_id == erp_order_id:
        return
    before = {"status": order.status, "erp_order_id": order.erp_order_id}
    order.erp_order_id = erp_order_id
    order.booked_at = utcnow()
    if order.status == OrderStatus.pending.value:
        order.status = OrderStatus.booked.value
    audit.record(session, actor=ERP, action="book", entity=ENTITY, entity_id=order.id,
                 before=before, after={"status": order.status, "erp_order_id": erp_order_id})
    _timeline(session, order, "order.booked", f"{order.number} → ERP {erp_order_id}")


def record_refusal(session: AsyncSession, order: Order, *, reason: str, step: str) -> None:
    """The ERP refused the order for good: nothing more is sent; people must look at it."""
    audit.record(session, actor=ERP, action="erp_refused", entity=ENTITY, entity_id=order.id,
                 note={"step": step, "reason": reason})
    _timeline(session, order, "order.erp_refused", reason[:200], {"step": step})


def record_invoice_request(session: AsyncSession, order: Order) -> None:
    if order.invoice_requested_at is not None:
        return
    order.invoice_requested_at = utcnow()
    audit.record(session, actor=ERP, action="request_invoice", entity=ENTITY,
                 entity_id=order.id, after={"invoice_requested_at": order.invoice_requested_at})


def record_without_erp(session: AsyncSession, order: Order) -> None:
    """No ERP is configured: say so once, so nobody waits for a booking that never comes."""
    audit.record(session, actor=ERP, action="no_erp", entity=ENTITY, entity_id=order.id,
                 note={"reason": "no ERP is configured (DOSSIER_ERP_URL)"})


def _complete_if_done(session: AsyncSession, order: Order) -> None:
    if (
        order.status != OrderStatus.completed.value
        and order.shipped_at is not None
        and order.paid_amount >= order.amount
    ):
        before = order.status
        order.status = OrderStatus.completed.value
        audit.record(session, actor=ERP, action="complete", entity=ENTITY, entity_id=order.id,
                     before={"status": before}, after={"status": order.status})
        _timeline(session, order, "order.completed", order.number)


async def apply_event(session: AsyncSession, order: Order, event: ErpEvent) -> bool:
    """Fold one ERP event into the order; False when this event id was applied before."""
    if isinstance(event, PaymentReceived):
        return await _payment(session, order, event)
    if isinstance(event, OrderShipped):
        applied = _shipped(session, order, event)
    else:
        applied = _invoiced(session, order, event)
    _complete_if_done(session, order)
    return applied


def _shipped(session: AsyncSession, order: Order, event: OrderShipped) -> bool:
    if order.tracking_no == event.tracking_no and order.carrier == event.carrier:
        return False
    before = {"status": order.status, "carrier": order.carrier, "tracking_no": order.tracking_no}
    order.carrier, order.tracking_no = event.carrier, event.tracking_no
    order.shipped_at = event.shipped_at
    if order.status in (OrderStatus.pending.value, OrderStatus.booked.value):
        order.status = OrderStatus.shipped.value
    after = {"status": order.status, "carrier": order.carrier, "tracking_no": order.tracking_no}
    audit.record(session, actor=ERP, action="ship", entity=ENTITY, entity_id=order.id,
                 before=before, after=after, note={"event_id": event.event_id})
    _timeline(session, order, "order.shipped", f"{event.carrier} {event.tracking_no}",
              {"event_id": event.event_id})
    return True


def _invoiced(session: AsyncSession, order: Order, event: OrderInvoiced) -> bool:
    """One invoice per order: a later one (a corrected invoice) replaces the earlier."""
    if order.invoice_no == event.invoice_no and order.invoiced_amount == event.amount:
        return False
    before = {"invoice_no": order.invoice_no, "invoiced_amount": order.invoiced_amount}
    order.invoice_no, order.invoiced_amount = event.invoice_no, event.amount
    order.invoiced_at = event.occurred_at
    audit.record(session, actor=ERP, action="invoice", entity=ENTITY, entity_id=order.id,
                 before=before, after={"invoice_no": event.invoice_no,
                                       "invoiced_amount": event.amount},
                 note={"event_id": event.event_id})
    _timeline(session, order, "order.invoiced", f"{event.invoice_no} · {event.amount}",
              {"event_id": event.event_id})
    return True


def allocate(plan: list[Instalment], amount: Decimal, paid_on: date) -> list[int]:
    """Spread a payment over the open instalments, earliest due first; partial payments add
    up. Returns the seqs this payment settled. What is left after the last is an overpayment,
    kept on the order's paid amount."""
    settled = []
    for instalment in plan:
        if amount <= 0:
            break
        owed = instalment.amount - instalment.paid_amount
        if owed <= 0:
            continue
        share = min(owed, amount)
        instalment.paid_amount += share
        amount -= share
        if instalment.paid_amount >= instalment.amount:
            instalment.status = InstalmentStatus.paid.value
            instalment.paid_on = paid_on
            settled.append(instalment.seq)
    return settled


async def _payment(session: AsyncSession, order: Order, event: PaymentReceived) -> bool:
    if await session.scalar(select(Payment.id).where(Payment.event_id == event.event_id)):
        return False
    session.add(Payment(order_id=order.id, event_id=event.event_id, amount=event.amount,
                        paid_on=event.paid_on, reference=event.reference))
    settled = allocate(await instalments(session, order.id), event.amount, event.paid_on)
    before = {"paid_amount": order.paid_amount}
    order.paid_amount += event.amount
    if order.last_paid_on is None or event.paid_on > order.last_paid_on:
        order.last_paid_on = event.paid_on
    audit.record(session, actor=ERP, action="payment", entity=ENTITY, entity_id=order.id,
                 before=before, after={"paid_amount": order.paid_amount},
                 note={"event_id": event.event_id, "settled": settled})
    _timeline(session, order, "payment.received",
              f"{order.number} · {order.currency} {event.amount}",
              {"event_id": event.event_id, "paid_on": event.paid_on.isoformat(),
               "reference": event.reference, "settled": settled})
    _complete_if_done(session, order)
    return True


async def mark_overdue(session: AsyncSession, *, order_id: int, seq: int) -> bool:
    """An unpaid instalment passed its due day; False when it was paid or marked already."""
    order = await locked(session, order_id)
    row = await session.scalar(
        select(Instalment).where(Instalment.order_id == order_id, Instalment.seq == seq)
    )
    if row is None:
        raise NotFound(f"order {order.number} has no instalment {seq}", field="seq")
    if row.status != InstalmentStatus.open.value:
        return False
    row.status = InstalmentStatus.overdue.value
    actor = Actor(user_id=None, name="workflow", role=Role.admin, source=Source.workflow)
    audit.record(session, actor=actor, action="overdue", entity=ENTITY, entity_id=order.id,
                 note={"seq": seq, "due_on": row.due_on, "owed": row.amount - row.paid_amount})
    _timeline(session, order, "order.payment_overdue",
              f"{order.number} #{seq} · {row.amount - row.paid_amount}",
              {"seq": seq, "due_on": row.due_on.isoformat()}, actor=actor)
    return True


# --- reads --------------------------------------------------------------------------------


async def get(session: AsyncSession, *, actor: Actor, order_id: int) -> Order:
    """The order if the actor may see its customer; 404 otherwise, so no existence leaks."""
    order = await session.get(Order, order_id)
    if order is None:
        raise NotFound("no such order", field="order_id")
    await customer.check_visible(
        session, actor=actor, customer_id=order.customer_id, entity="order"
    )
    return order


async def payments(session: AsyncSession, order_id: int) -> list[Payment]:
    rows = await session.scalars(
        select(Payment).where(Payment.order_id == order_id).order_by(Payment.paid_on, Payment.id)
    )
    return list(rows.all())


async def search(
    session: AsyncSession, *, actor: Actor, query: OrderQuery
) -> tuple[list[Order], int]:
    """Newest first, among the orders of customers the actor may see."""
    actor.require_scope(Scope.customers_read)
    where = [customer.visible(actor)]
    if query.customer_id is not None:
        where.append(Order.customer_id == query.customer_id)
    if query.status is not None:
        where.append(Order.status == query.status.value)
    base = select(Order).join(Customer, Customer.id == Order.customer_id).where(*where)
    total = await session.scalar(select(func.count()).select_from(base.subquery()))
    rows = await session.scalars(
        base.order_by(Order.ordered_on.desc(), Order.id.desc())
        .offset((query.page - 1) * query.size)
        .limit(query.size)
    )
    return list(rows.all()), total or 0
