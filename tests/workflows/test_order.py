"""The order lifecycle on the time-skipping server, with the reference ERP over real HTTP.

A stand-in for the contract workflow's last step opens the order (`order_open`) and starts the
`Order` child exactly as the contract side does. The ERP simulator runs on a loopback port and,
for the payment plan, sends its signed events to Dossier's API on another one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import httpx
import pytest
from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.workflow import ParentClosePolicy

from domain.customer import Customer
from domain.notification import Delivery
from domain.order.lifecycle import OrderOpen, OrderOpened, OrderStart
from domain.order.models import Instalment, Order, Payment
from domain.settings import Settings
from domain.task import Task
from domain.timeline import TimelineEvent
from tests.conftest import MakeUser, wait_until
from tests.erp import ErpSim, LoopbackServer, signed_contract, with_erp
from tests.histories import record_history
from tests.leads import fired_timers, travel_to

SHANGHAI = ZoneInfo("Asia/Shanghai")
LATENCY = timedelta(seconds=10)
"""How late a timer may fire: the moments the workflow tasks take on a busy 2-core machine."""


@pytest.fixture
def settings(settings: Settings, erp_sim: ErpSim) -> Settings:
    return with_erp(settings, erp_sim)


class Signed(BaseModel):
    contract_id: int
    id_prefix: str
    task_queue: str


@workflow.defn(name="TestContractSigned")
class ContractSigned:
    """What the contract workflow does after the last approval."""

    @workflow.run
    async def run(self, signed: Signed) -> int:
        opened: OrderOpened = await workflow.execute_activity(
            "order_open",
            OrderOpen(contract_id=signed.contract_id),
            result_type=OrderOpened,
            task_queue=signed.task_queue,
            start_to_close_timeout=timedelta(seconds=30),
        )
        await workflow.start_child_workflow(
            "Order",
            OrderStart(order_id=opened.order_id),
            id=f"{signed.id_prefix}order-{opened.order_id}",
            task_queue=signed.task_queue,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        return opened.order_id


@asynccontextmanager
async def signed_contracts(client: Client, settings: Settings) -> AsyncIterator[
    Callable[[int], Awaitable[int]]
]:
    """Sign a contract the way the contract side will: returns the new order's id."""
    queue = f"{settings.temporal_task_queue}-contracts"

    async def sign(contract_id: int) -> int:
        return await client.execute_workflow(
            ContractSigned.run,
            Signed(contract_id=contract_id, id_prefix=settings.temporal_id_prefix,
                   task_queue=settings.temporal_task_queue),
            id=f"{queue}-{contract_id}",
            task_queue=queue,
        )

    async with Worker(client, task_queue=queue, workflows=[ContractSigned],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        yield sign


async def _order(sessions: async_sessionmaker[AsyncSession], order_id: int) -> Order:
    async with sessions() as session:
        row = await session.get(Order, order_id)
        assert row is not None
        return row


async def _until(sessions: async_sessionmaker[AsyncSession], order_id: int,
                 check: Callable[[Order], bool]) -> Order:
    async def ok() -> bool:
        return check(await _order(sessions, order_id))

    await wait_until(ok)
    return await _order(sessions, order_id)


async def _activity_runs(handle: WorkflowHandle, name: str) -> list[tuple[int, datetime]]:
    """Each run of activity `name`: the attempt that ended it and when it completed."""
    events = (await handle.fetch_history()).events
    scheduled = {
        e.event_id for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == name
    }
    started = {
        e.event_id: e.activity_task_started_event_attributes.attempt for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
    }
    return [
        (started[e.activity_task_completed_event_attributes.started_event_id],
         e.event_time.ToDatetime(tzinfo=SHANGHAI))
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and e.activity_task_completed_event_attributes.started_event_id in started
    ]


async def _today(env: WorkflowEnvironment) -> datetime:
    return (await env.get_current_time()).astimezone(SHANGHAI)


async def test_erp_down_for_ten_minutes_books_the_order_exactly_once(
    temporal_env: WorkflowEnvironment, temporal_client: Client, worker: Worker,
    erp_sim: ErpSim, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    make_user: MakeUser,
) -> None:
    rep = await make_user("rep1")
    due = (await _today(temporal_env)).date() + timedelta(days=30)
    contract = await signed_contract(sessions, owner_id=rep.id, amount="12000.00",
                                     terms=[(due, "12000.00")])
    await erp_sim.down()
    async with signed_contracts(temporal_client, settings) as sign:
        started = await temporal_env.get_current_time()
        order_id = await sign(contract.id)
        await temporal_env.sleep(timedelta(minutes=10))

        assert (await _order(sessions, order_id)).erp_order_id is None
        await erp_sim.up()
        assert erp_sim.state.requests == {}
        await temporal_env.sleep(timedelta(minutes=3))
        order = await _until(sessions, order_id,
                             lambda o: o.erp_order_id and o.invoice_requested_at is not None)

    handle = temporal_client.get_workflow_handle(settings.workflow_id("order", order_id))
    key = f"{settings.workflow_id('order', order_id)}/book"
    assert erp_sim.bookings() == [{"key": key, "erp_order_id": order.erp_order_id,
                                   "number": order.number, "requests": 1}]
    assert order.status == "booked" and order.number.startswith("SO-")
    [(attempt, booked_at)] = await _activity_runs(handle, "order_book")
    # 1 s, 2 s, 4 s … capped at 2 min: the first attempt after the ERP is back books it.
    assert attempt >= 10
    assert started + timedelta(minutes=10) <= booked_at < started + timedelta(minutes=12) + LATENCY
    [sent] = [b.order for b in erp_sim.state.bookings.values()]
    assert sent["amount"] == "12000.00" and sent["payment_plan"] == [
        {"seq": 1, "due_on": due.isoformat(), "amount": "12000.00"}
    ]
    assert sent["customer"]["tax_id"] == "91350100M000100Y43"
    assert sent["customer"]["bank_name"] == "招商银行上海分行"
    assert len(erp_sim.state.invoice_requests) == 1


async def test_a_lost_answer_is_retried_under_the_same_key_and_books_once(
    temporal_env: WorkflowEnvironment, temporal_client: Client, worker: Worker,
    erp_sim: ErpSim, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    make_user: MakeUser,
) -> None:
    rep = await make_user("rep1")
    contract = await signed_contract(sessions, owner_id=rep.id)
    await erp_sim.switch(lose_response_next=1, fail_next=0)
    async with signed_contracts(temporal_client, settings) as sign:
        order_id = await sign(contract.id)
        await temporal_env.sleep(timedelta(minutes=1))
        order = await _until(sessions, order_id, lambda o: o.erp_order_id is not None)

    key = f"{settings.workflow_id('order', order_id)}/book"
    assert erp_sim.bookings() == [{"key": key, "erp_order_id": order.erp_order_id,
                                   "number": order.number, "requests": 2}]


async def _tasks(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, int]]:
    async with sessions() as session:
        rows = await session.execute(
            select(Task.kind, Task.assignee_id)
            .where(Task.kind.startswith("order."))
            .order_by(Task.id)
        )
        return [tuple(r) for r in rows.all()]


async def test_payment_plan_reminds_and_escalates_one_late_instalment_exactly_once(
    temporal_env: WorkflowEnvironment, temporal_client: Client, worker: Worker,
    erp_sim: ErpSim, dossier_server: LoopbackServer, sessions: async_sessionmaker[AsyncSession],
    settings: Settings, make_user: MakeUser, make_team: Callable[..., Awaitable[int]],
) -> None:
    boss = await make_user("boss", email="boss@example.cn")
    team_id = await make_team("华东销售部", manager_id=boss.id)
    rep = await make_user("rep1", team_id=team_id, email="rep1@example.cn")
    erp_sim.state.dossier_url = dossier_server.url
    today = (await _today(temporal_env)).date()
    first_due, second_due = today + timedelta(days=10), today + timedelta(days=20)
    contract = await signed_contract(sessions, owner_id=rep.id, amount="10000.00",
                                     terms=[(first_due, "4000.00"), (second_due, "6000.00")])

    def at(day: date, hour: int) -> datetime:
        return datetime.combine(day, time(hour), SHANGHAI)

    remind_first = at(first_due - timedelta(days=3), 9)
    remind_second = at(second_due - timedelta(days=3), 9)
    overdue_second = at(second_due + timedelta(days=1), 0)

    async with signed_contracts(temporal_client, settings) as sign:
        order_id = await sign(contract.id)
    order = await _until(sessions, order_id, lambda o: o.erp_order_id is not None)
    handle = temporal_client.get_workflow_handle(settings.workflow_id("order", order_id))

    await travel_to(temporal_env, remind_first + timedelta(hours=1))
    await _wait_for_tasks(sessions, 1)
    on_time = await erp_sim.send(order.number, "pay", amount="4000.00",
                                 paid_on=(first_due - timedelta(days=1)).isoformat())
    assert on_time["status"] == 202, on_time
    await _until(sessions, order_id, lambda o: o.paid_amount == Decimal("4000.00"))

    await travel_to(temporal_env, overdue_second + timedelta(hours=1))
    await _wait_for_tasks(sessions, 4)
    late_on = (second_due + timedelta(days=2)).isoformat()
    for part in ("2500.00", "3500.00"):  # partial payments add up
        sent = await erp_sim.send(order.number, "pay", amount=part, paid_on=late_on)
        assert sent["status"] == 202, sent
    await _until(sessions, order_id, lambda o: o.paid_amount == Decimal("10000.00"))
    shipped = await erp_sim.send(order.number, "ship", tracking_no="SF000111222")
    assert shipped["status"] == 202, shipped
    assert await handle.result() == "completed"
    await record_history(handle, "order_plan_overdue_paid_shipped")

    timers = await fired_timers(handle)
    expected = [remind_first, remind_second, overdue_second]
    assert len(timers) == len(expected), timers
    for fired, due in zip(timers, expected, strict=True):
        assert due <= fired < due + LATENCY, (fired, due)
    assert await _tasks(sessions) == [
        ("order.payment_due", rep.id),
        ("order.payment_due", rep.id),
        ("order.payment_overdue", rep.id),
        ("order.payment_escalated", boss.id),
    ]
    async with sessions() as session:
        escalations = await session.scalar(
            select(func.count(Delivery.id)).where(Delivery.key.contains("payment_escalated"),
                                                  Delivery.channel == "in_app")
        )
        plan = list(await session.scalars(
            select(Instalment).where(Instalment.order_id == order_id).order_by(Instalment.seq)
        ))
        payments = list(await session.scalars(select(Payment.amount).order_by(Payment.id)))
        buyer = await session.get(Customer, order.customer_id)
        kinds = list(await session.scalars(
            select(TimelineEvent.kind).where(TimelineEvent.customer_id == order.customer_id)
            .order_by(TimelineEvent.id)
        ))
    assert escalations == 1
    assert [(i.status, i.paid_amount, i.paid_on) for i in plan] == [
        ("paid", Decimal("4000.00"), first_due - timedelta(days=1)),
        ("paid", Decimal("6000.00"), second_due + timedelta(days=2)),
    ]
    assert payments == [Decimal("4000.00"), Decimal("2500.00"), Decimal("3500.00")]
    final = await _order(sessions, order_id)
    assert final.status == "completed" and final.tracking_no == "SF000111222"
    assert buyer is not None and buyer.purchase_count == 1
    assert buyer.total_amount == Decimal("10000.00")
    assert buyer.first_purchase_on == buyer.last_purchase_on == final.ordered_on
    assert buyer.average_order_value == Decimal("10000.00")
    assert kinds.count("payment.received") == 3 and kinds.count("order.payment_overdue") == 1
    assert {"order.created", "order.booked", "order.shipped", "order.completed"} <= set(kinds)

    # The simulator's last event, sent again word for word: a replay, refused.
    async with httpx.AsyncClient(base_url=dossier_server.url) as http:
        replay = await http.post("/api/erp/events", content=shipped["body"].encode(),
                                 headers=shipped["headers"])
    assert replay.status_code == 409, replay.text


async def _wait_for_tasks(sessions: async_sessionmaker[AsyncSession], count: int) -> None:
    async def enough() -> bool:
        return len(await _tasks(sessions)) >= count

    await wait_until(enough)
