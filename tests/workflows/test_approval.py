"""Contract approval on the time-skipping server: reminders, escalation, parallel steps,
requested changes, delegates — each at its exact instant."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.approval import start_approval
from domain.approval import Subject
from domain.db import transaction
from domain.deal.models import Deal
from domain.notification import Delivery
from domain.order.models import Order
from domain.policy import PolicyKind
from domain.settings import Settings
from domain.timeline import TimelineEvent
from domain.user import User
from tests.conftest import MakeUser, wait_until
from tests.deals import (
    Org,
    approvals,
    contract_row,
    make_contract,
    make_customer,
    pending_for,
    tasks_of,
)
from tests.histories import record_history
from tests.leads import SHANGHAI, fired_timers, next_weekday, publish, travel_to
from tests.workflows.test_lead import assert_instants

CHAIN = {
    "chains": [
        {
            "name": "合同审批",
            "steps": [
                {
                    "name": "legal_finance",
                    "seats": [
                        {"kind": "group", "group": "legal"},
                        {"kind": "group", "group": "finance"},
                    ],
                    "remind_after": "PT2H",
                    "escalate_after": "PT6H",
                },
                {
                    "name": "director",
                    "seats": [{"kind": "group", "group": "director"}],
                    "remind_after": "PT1H",
                    "escalate_after": "PT3H",
                },
            ],
        }
    ],
    "business_hours": False,
}


async def _submitted(
    env: WorkflowEnvironment, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    settings: Settings, org: Org, *, at: datetime | None = None,
) -> int:
    await publish(sessions, PolicyKind.approval, CHAIN)
    if at is not None:
        await travel_to(env, at)
    customer_id = await make_customer(client, org.headers["rep"], "深圳青禾冷链有限公司")
    contract_id = await make_contract(sessions, customer_id=customer_id, owner_id=org.ids["rep"])
    await start_approval(env.client, settings, subject=Subject.contract, subject_id=contract_id)
    return contract_id


async def _answer(
    client: httpx.AsyncClient, headers: dict[str, str], task_id: int | None, decision: str,
    comment: str | None = None,
) -> httpx.Response:
    body = {"decision": decision, **({"comment": comment} if comment else {})}
    return await client.post(f"/api/tasks/{task_id}/complete", json=body, headers=headers)


async def _approve(client: httpx.AsyncClient, headers: dict[str, str], task_id: int | None) -> None:
    answered = await _answer(client, headers, task_id, "approve")
    assert answered.status_code == 200, answered.text


async def _told(sessions: async_sessionmaker[AsyncSession], template: str) -> list[int | None]:
    """Who got a notice of this template (one e-mail delivery row per notice)."""
    async with sessions() as session:
        rows = await session.scalars(
            select(Delivery.recipient_id).where(Delivery.channel == "email",
                                                Delivery.key.like(f"%/{template}"))
        )
        return sorted(rows.all())


async def test_reminder_then_escalation_to_the_approvers_manager_at_exact_instants(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, org: Org,
) -> None:
    monday = await next_weekday(temporal_env, 0, time(10, 0))
    contract_id = await _submitted(temporal_env, client, sessions, settings, org, at=monday)
    asked = await pending_for(sessions, contract_id, 2)
    assert {a.assignee_id for a in asked} == {org.ids["legal"], org.ids["finance"]}
    assert (await contract_row(sessions, contract_id)).status == "in_approval"

    legal = next(a for a in asked if a.assignee_id == org.ids["legal"])
    await _approve(client, org.headers["legal"], legal.task_id)
    await temporal_env.sleep(timedelta(hours=7))
    escalated = await pending_for(sessions, contract_id, 2)  # finance, and chief for the seat

    handle = temporal_env.client.get_workflow_handle(settings.workflow_id("contract", contract_id))
    assert_instants(await fired_timers(handle), [monday + timedelta(hours=2),
                                                  monday + timedelta(hours=6)])
    assert {(a.assignee_id, a.escalated_at is not None) for a in escalated} == {
        (org.ids["finance"], False), (org.ids["chief"], True),
    }
    assert await _told(sessions, "approval.reminder") == [org.ids["finance"]]  # legal answered
    assert await _told(sessions, "approval.escalated") == [org.ids["chief"]]

    # The director answers the escalated seat; the next step then asks the director again.
    chief_row = next(a for a in escalated if a.assignee_id == org.ids["chief"])
    await _approve(client, org.headers["chief"], chief_row.task_id)
    rows = await approvals(sessions, contract_id)
    finance_row = next(r for r in rows if r.assignee_id == org.ids["finance"])
    assert finance_row.status == "withdrawn"
    assert (await tasks_of(sessions, "approval"))[1] == (org.ids["finance"], "cancelled")
    director_step = await pending_for(sessions, contract_id, 1)
    assert [(r.step_name, r.assignee_id) for r in director_step] == [("director", org.ids["chief"])]


async def test_one_parallel_approver_rejecting_rejects_the_contract(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, org: Org,
) -> None:
    contract_id = await _submitted(temporal_env, client, sessions, settings, org)
    asked = {a.assignee_id: a for a in await pending_for(sessions, contract_id, 2)}

    approved = await _answer(client, org.headers["legal"], asked[org.ids["legal"]].task_id,
                             "approve")
    rejected = await _answer(client, org.headers["finance"], asked[org.ids["finance"]].task_id,
                             "reject", "回款条件不可接受")

    assert approved.status_code == 200 and rejected.status_code == 200, rejected.text
    handle = temporal_env.client.get_workflow_handle(settings.workflow_id("contract", contract_id))
    assert await handle.result() == "rejected"
    assert (await contract_row(sessions, contract_id)).status == "rejected"
    trail = [(r.assignee_id, r.status, r.comment) for r in await approvals(sessions, contract_id)]
    assert trail == [(org.ids["legal"], "approved", None),
                     (org.ids["finance"], "rejected", "回款条件不可接受")]
    async with sessions() as session:
        kinds = (await session.scalars(
            select(TimelineEvent.kind).order_by(TimelineEvent.id))).all()
    assert kinds[-3:] == ["approval.approve", "approval.reject", "contract.rejected"]


async def test_changes_requested_then_resubmitted_and_approved_opens_the_order(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, org: Org,
) -> None:
    contract_id = await _submitted(temporal_env, client, sessions, settings, org)
    asked = {a.assignee_id: a for a in await pending_for(sessions, contract_id, 2)}
    sent_back = await _answer(client, org.headers["legal"], asked[org.ids["legal"]].task_id,
                              "request_changes", "违约条款需修改")
    assert sent_back.status_code == 200, sent_back.text

    async def back_with_owner() -> bool:
        return (await contract_row(sessions, contract_id)).status == "changes_requested"

    await wait_until(back_with_owner)
    edit = await client.patch(f"/api/contracts/{contract_id}", headers=org.headers["rep"],
                              json={"terms": "违约金为合同金额的 5%"})
    assert edit.status_code == 200, edit.text
    resubmitted = await client.post(f"/api/contracts/{contract_id}/submit",
                                    headers=org.headers["rep"])
    assert resubmitted.status_code == 200, resubmitted.text

    second = await pending_for(sessions, contract_id, 2)
    assert {r.round for r in second} == {2}
    for row in second:
        name = "legal" if row.assignee_id == org.ids["legal"] else "finance"
        await _approve(client, org.headers[name], row.task_id)
    (director,) = await pending_for(sessions, contract_id, 1)
    await _approve(client, org.headers["chief"], director.task_id)

    async def signed() -> bool:
        return (await contract_row(sessions, contract_id)).status == "signed"

    await wait_until(signed)

    async def ordered() -> bool:
        async with sessions() as session:
            return await session.scalar(
                select(Order.id).where(Order.contract_id == contract_id)) is not None

    await wait_until(ordered)
    first_round = [(r.round, r.status) for r in await approvals(sessions, contract_id)
                   if r.round == 1]
    assert sorted(first_round) == [(1, "changes_requested"), (1, "withdrawn")]
    handle = temporal_env.client.get_workflow_handle(settings.workflow_id("contract", contract_id))
    await record_history(handle, "contract_changes_resubmitted_signed")
    detail = (await client.get(f"/api/contracts/{contract_id}", headers=org.headers["rep"])).json()
    assert detail["round"] == 2 and detail["signed_at"] is not None
    assert [a["status"] for a in detail["approvals"] if a["round"] == 2] == ["approved"] * 3


async def test_an_approver_on_leave_is_stood_in_for_by_their_delegate(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, org: Org,
    make_user: MakeUser, login,
) -> None:
    stand_in = await make_user("legal2", "approver", approver_group=None)
    async with transaction(sessions) as session:
        lawyer = await session.get(User, org.ids["legal"])
        assert lawyer is not None
        lawyer.on_leave, lawyer.delegate_id = True, stand_in.id
    contract_id = await _submitted(temporal_env, client, sessions, settings, org)

    asked = {a.assignee_id: a for a in await pending_for(sessions, contract_id, 2)}
    assert set(asked) == {stand_in.id, org.ids["finance"]}
    assert asked[stand_in.id].approver_id == org.ids["legal"]
    answered = await _answer(client, await login("legal2"), asked[stand_in.id].task_id, "approve")
    assert answered.status_code == 200, answered.text
    row = next(r for r in await approvals(sessions, contract_id) if r.assignee_id == stand_in.id)
    assert (row.status, row.decided_by, row.approver_id) == (
        "approved", stand_in.id, org.ids["legal"])


async def test_a_signed_contract_raises_its_renewal_30_days_before_it_ends(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, org: Org,
) -> None:
    now = (await temporal_env.get_current_time()).astimezone(SHANGHAI)
    ends = now.date() + timedelta(days=40)
    customer_id = await make_customer(client, org.headers["rep"], "青岛海岸线食品有限公司")
    contract_id = await make_contract(sessions, customer_id=customer_id, owner_id=org.ids["rep"],
                                      end_on=ends)
    await start_approval(temporal_env.client, settings, subject=Subject.contract,
                         subject_id=contract_id)
    for row in await pending_for(sessions, contract_id, 2):  # the default chain: legal, finance
        name = "legal" if row.assignee_id == org.ids["legal"] else "finance"
        await _approve(client, org.headers[name], row.task_id)

    async def signed() -> bool:
        return (await contract_row(sessions, contract_id)).status == "signed"

    await wait_until(signed)
    await temporal_env.sleep(timedelta(days=11))

    async def renewed() -> bool:
        return (await contract_row(sessions, contract_id)).renewal_deal_id is not None

    await wait_until(renewed)
    handle = temporal_env.client.get_workflow_handle(settings.workflow_id("contract", contract_id))
    assert_instants(await fired_timers(handle),
                    [datetime.combine(ends - timedelta(days=30), time(9), SHANGHAI)])
    async with sessions() as session:
        deal = await session.get(Deal, (await contract_row(sessions, contract_id)).renewal_deal_id)
    assert deal is not None
    assert (deal.kind, deal.renewal_of_contract_id, deal.owner_id, deal.expected_close_on) == (
        "renewal", contract_id, org.ids["rep"], ends)
    assert await tasks_of(sessions, "contract.renewal") == [(org.ids["rep"], "open")]
