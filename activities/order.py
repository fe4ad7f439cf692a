"""Side effects of the order lifecycle: open the order, book it in the ERP, fold in ERP events.

Each activity is idempotent: the order is one per contract, the ERP calls carry an idempotency
key derived from the workflow id and step, and events are applied once per event id. Domain
refusals become non-retryable ApplicationErrors named after the domain error class.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.erp import REFUSED, ErpClient
from activities.unit import unit
from domain import policy
from domain.contract import Contract
from domain.customer import Customer
from domain.erp import ErpBooking, ErpInvoiceAccepted
from domain.order import service as orders
from domain.order.lifecycle import (
    InstalmentOverdue,
    InstalmentStep,
    OrderBooked,
    OrderEvent,
    OrderOpen,
    OrderOpened,
    OrderPlan,
    OrderProgress,
    OrderStart,
)
from domain.order.models import InstalmentStatus, OrderStatus
from domain.order.rules import OrderPolicy, overdue_at, reminder_at
from domain.policy import PolicyKind
from domain.settings import Settings
from domain.user import Team, User


class OrderActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.zone = ZoneInfo(settings.timezone)
        self.erp = ErpClient(settings)

    def _unit(self) -> AbstractAsyncContextManager[AsyncSession]:
        return unit(self.sessions)

    async def _policy(self, session: AsyncSession, version: int | None) -> tuple[int, OrderPolicy]:
        if version is None:
            version, pinned = await policy.current(session, kind=PolicyKind.order)
        else:
            pinned = await policy.at_version(session, kind=PolicyKind.order, version=version)
        assert isinstance(pinned, OrderPolicy)
        return version, pinned

    @activity.defn(name="order_open")
    async def open(self, request: OrderOpen) -> OrderOpened:
        """The signed contract's order and payment plan; a retry returns the same order."""
        # The day the workflow asked, on Temporal's clock: the order date of record.
        today = activity.info().current_attempt_scheduled_time.astimezone(self.zone).date()
        async with self._unit() as session:
            contract = await session.get(Contract, request.contract_id)
            signed_on = (
                contract.signed_at.astimezone(self.zone).date()
                if contract is not None and contract.signed_at is not None
                else today
            )
            _version, rules = await self._policy(session, None)
            order = await orders.open_from_contract(
                session,
                contract_id=request.contract_id,
                policy=rules,
                today=today,
                signed_on=signed_on,
            )
            return OrderOpened(order_id=order.id, number=order.number)

    @activity.defn(name="order_load_plan")
    async def load_plan(self, start: OrderStart) -> OrderPlan:
        async with self._unit() as session:
            order = await orders.locked(session, start.order_id)
            version, rules = await self._policy(session, start.policy_version)
            owner = await session.get(User, order.owner_id) if order.owner_id else None
            team = await session.get(Team, owner.team_id) if owner and owner.team_id else None
            manager = team.manager_id if team and team.manager_id != order.owner_id else None
            customer = await session.get(Customer, order.customer_id)
            return OrderPlan(
                order_id=order.id,
                number=order.number,
                customer_id=order.customer_id,
                customer_name=customer.name if customer else "",
                owner_id=order.owner_id,
                manager_id=manager,
                booked=order.erp_order_id is not None,
                invoice_requested=order.invoice_requested_at is not None,
                completed=order.status == OrderStatus.completed.value,
                policy_version=version,
                instalments=[
                    InstalmentStep(
                        seq=row.seq,
                        due_on=row.due_on,
                        amount=row.amount,
                        remind_at=reminder_at(row.due_on, rules, self.zone),
                        overdue_at=overdue_at(row.due_on, rules, self.zone),
                        paid=row.status == InstalmentStatus.paid.value,
                        overdue=row.status == InstalmentStatus.overdue.value,
                    )
                    for row in await orders.instalments(session, order.id)
                ],
            )

    @activity.defn(name="order_book")
    async def book(self, start: OrderStart) -> OrderBooked:
        """Book the order in the ERP under the key `<workflow id>/book`, then record it."""
        async with self._unit() as session:
            order = await orders.locked(session, start.order_id)
            if order.erp_order_id is not None:
                return OrderBooked(booked=True, erp_order_id=order.erp_order_id)
            if not self.erp.configured:
                orders.record_without_erp(session, order)
                return OrderBooked(booked=False)
            payload = await orders.erp_order(session, order)
        try:
            booking = await self.erp.send(
                "POST",
                "/api/orders",
                payload,
                key=f"{activity.info().workflow_id}/book",
                answer=ErpBooking,
            )
        except ApplicationError as failed:
            if failed.type != REFUSED:
                raise
            async with self._unit() as session:
                order = await orders.locked(session, start.order_id)
                orders.record_refusal(session, order, reason=failed.message, step="book")
            return OrderBooked(booked=False, refused=failed.message)
        async with self._unit() as session:
            order = await orders.locked(session, start.order_id)
            orders.record_booking(session, order, erp_order_id=booking.erp_order_id)
        return OrderBooked(booked=True, erp_order_id=booking.erp_order_id)

    @activity.defn(name="order_request_invoice")
    async def request_invoice(self, start: OrderStart) -> str | None:
        """Ask the ERP for the invoice (key `<workflow id>/invoice`); the refusal, if refused."""
        async with self._unit() as session:
            order = await orders.locked(session, start.order_id)
            if order.invoice_requested_at is not None:
                return None
            payload = await orders.erp_invoice_request(session, order)
        try:
            await self.erp.send(
                "POST",
                "/api/invoice-requests",
                payload,
                key=f"{activity.info().workflow_id}/invoice",
                answer=ErpInvoiceAccepted,
            )
        except ApplicationError as failed:
            if failed.type != REFUSED:
                raise
            async with self._unit() as session:
                order = await orders.locked(session, start.order_id)
                orders.record_refusal(session, order, reason=failed.message, step="invoice")
            return failed.message
        async with self._unit() as session:
            orders.record_invoice_request(session, await orders.locked(session, start.order_id))
        return None

    @activity.defn(name="order_apply_event")
    async def apply_event(self, request: OrderEvent) -> OrderProgress:
        async with self._unit() as session:
            order = await orders.locked(session, request.order_id)
            applied = await orders.apply_event(session, order, request.event)
            await session.flush()
            plan = await orders.instalments(session, order.id)
            return OrderProgress(
                applied=applied,
                status=order.status,
                paid_seqs=[i.seq for i in plan if i.status == InstalmentStatus.paid.value],
                completed=order.status == OrderStatus.completed.value,
            )

    @activity.defn(name="order_mark_overdue")
    async def mark_overdue(self, request: InstalmentOverdue) -> bool:
        async with self._unit() as session:
            return await orders.mark_overdue(session, order_id=request.order_id, seq=request.seq)
