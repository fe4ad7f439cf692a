"""From a deal to a signed contract and its order, over HTTP with a real worker on the dev
server: exit criteria, the contract drafted at negotiation, approvals from the inbox and from
one-click links, and every refusal (wrong approver, answered task, used, forged, expired link)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from domain.approval import ApprovalDecision, link_token
from domain.contract.models import Contract
from domain.deal.models import Deal
from domain.notification import Delivery
from domain.order.models import Order
from domain.settings import Settings
from domain.timeline import TimelineEvent
from tests.conftest import wait_until
from tests.deals import Org, accept_quote, contract_row, make_customer, pending_for, tasks_of
from tests.histories import record_history


async def _deal(client: httpx.AsyncClient, org: Org, **fields: object) -> dict:
    customer_id = await make_customer(client, org.headers["rep"], "杭州东岳环保设备有限公司")
    created = await client.post("/api/deals", headers=org.headers["rep"], json={
        "name": "东岳 · 除尘设备", "customer_id": customer_id, **fields})
    assert created.status_code == 201, created.text
    return created.json()


async def _move(client: httpx.AsyncClient, headers: dict[str, str], deal_id: int,
                **body: object) -> httpx.Response:
    return await client.post(f"/api/deals/{deal_id}/stage", headers=headers, json=body)


async def test_stage_moves_check_exit_criteria_reasons_and_rights(
    worker: Worker, client: httpx.AsyncClient, org: Org,
) -> None:
    deal = await _deal(client, org)
    rep = org.headers["rep"]
    first = await _move(client, rep, deal["id"], stage="needs_confirmed")
    assert first.status_code == 200, first.text

    skipping = await _move(client, rep, deal["id"], stage="proposal")
    assert skipping.status_code == 409
    detail = skipping.json()["detail"][0]
    assert detail["loc"][-1] == "budget" and "decision_maker" in detail["msg"]

    unknown = await _move(client, rep, deal["id"], stage="closing")
    assert unknown.status_code == 422 and "needs_confirmed" in unknown.json()["detail"][0]["msg"]
    lost = await _move(client, rep, deal["id"], stage="lost")
    assert lost.status_code == 422 and lost.json()["detail"][0]["loc"][-1] == "lost_reason"
    same = await _move(client, rep, deal["id"], stage="needs_confirmed")
    assert same.status_code == 409
    other_rep = await _move(client, org.headers["rep2"], deal["id"], stage="initial_contact")
    assert other_rep.status_code == 404  # rep2 cannot see rep's customer at all

    manager = await _move(client, org.headers["boss"], deal["id"], stage="lost",
                          lost_reason="预算不足")
    assert manager.status_code == 200, manager.text
    assert (manager.json()["status"], manager.json()["lost_reason"]) == ("lost", "预算不足")
    closed = await _move(client, rep, deal["id"], stage="proposal")
    assert closed.status_code == 409 and "lost" in closed.json()["detail"][0]["msg"]
    history = (await client.get(f"/api/deals/{deal['id']}", headers=rep)).json()["history"]
    assert [h["to_stage"] for h in history] == ["initial_contact", "needs_confirmed", "lost"]


async def test_from_negotiation_to_signed_contract_and_order_through_inbox_and_links(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    settings: Settings, org: Org, admin: dict[str, str],
) -> None:
    rep = org.headers["rep"]
    deal = await _deal(client, org, amount="180000", budget="200000")
    contact = await client.post(f"/api/customers/{deal['customer_id']}/contacts", headers=rep,
                                json={"name": "周总", "mobile": "13900139000"})
    assert contact.status_code == 201, contact.text
    patched = await client.patch(f"/api/deals/{deal['id']}", headers=rep,
                                 json={"decision_maker_id": contact.json()["id"]})
    assert patched.status_code == 200, patched.text
    for stage in ("needs_confirmed", "proposal"):
        assert (await _move(client, rep, deal["id"], stage=stage)).status_code == 200
    no_quote = await _move(client, rep, deal["id"], stage="negotiation")
    assert no_quote.status_code == 409 and no_quote.json()["detail"][0]["loc"][-1] == (
        "accepted_quote")
    await accept_quote(sessions, deal_id=deal["id"], total="180000.00")
    assert (await _move(client, rep, deal["id"], stage="negotiation")).status_code == 200

    async with sessions() as session:
        contract = await session.scalar(select(Contract).where(Contract.deal_id == deal["id"]))
    assert contract is not None and contract.amount == 180000
    asked = {a.assignee_id: a for a in await pending_for(sessions, contract.id, 2)}
    assert set(asked) == {org.ids["legal"], org.ids["finance"]}
    legal, finance = asked[org.ids["legal"]], asked[org.ids["finance"]]

    async def legal_and_finance_told() -> bool:
        async with sessions() as session:
            told = await session.scalars(select(Delivery.recipient_id).where(
                Delivery.key.like("%/contract.drafted"), Delivery.channel == "email"))
            return sorted(told.all()) == sorted([org.ids["legal"], org.ids["finance"]])

    await wait_until(legal_and_finance_told)

    # The inbox: a wrong approver, a missing decision, then the right answer, then again.
    wrong = await client.post(f"/api/tasks/{legal.task_id}/complete", headers=admin,
                              json={"decision": "approve"})
    assert wrong.status_code == 403 and "only the person asked" in wrong.json()["detail"][0]["msg"]
    undecided = await client.post(f"/api/tasks/{legal.task_id}/complete",
                                  headers=org.headers["legal"], json={})
    assert undecided.status_code == 422
    assert undecided.json()["detail"][0]["loc"][-1] == "decision"
    no_reason = await client.post(f"/api/tasks/{legal.task_id}/complete",
                                  headers=org.headers["legal"], json={"decision": "reject"})
    assert no_reason.status_code == 422 and "comment" in no_reason.json()["detail"][0]["msg"]
    done = await client.post(f"/api/tasks/{legal.task_id}/complete",
                             headers=org.headers["legal"],
                             json={"decision": "approve", "comment": "条款无误"})
    assert done.status_code == 200, done.text
    assert (done.json()["status"], done.json()["outcome"]["decision"]) == ("done", "approve")
    again = await client.post(f"/api/tasks/{legal.task_id}/complete",
                              headers=org.headers["legal"], json={"decision": "approve"})
    assert again.status_code == 409 and "already been answered" in again.json()["detail"][0]["msg"]

    # One-click links: forged, expired, then the real one once, then again.
    key = settings.signing_key()
    forged = link_token("not-the-key-" + "x" * 32, approval_id=finance.id,
                        user_id=org.ids["finance"],
                        decision=ApprovalDecision.approve,
                        expires_at=datetime.now(UTC) + timedelta(days=1))
    expired = link_token(key, approval_id=finance.id, user_id=org.ids["finance"],
                         decision=ApprovalDecision.approve,
                         expires_at=datetime.now(UTC) - timedelta(minutes=1))
    assert (await client.post(f"/api/approval-links/{forged}")).status_code == 403
    stale = await client.post(f"/api/approval-links/{expired}")
    assert stale.status_code == 410 and "expired" in stale.json()["detail"][0]["msg"]
    valid = link_token(key, approval_id=finance.id, user_id=org.ids["finance"],
                       decision=ApprovalDecision.approve,
                       expires_at=datetime.now(UTC) + timedelta(days=1))
    clicked = await client.post(f"/api/approval-links/{valid}")
    assert clicked.status_code == 200, clicked.text
    assert clicked.json()["outcome"] == "approved"  # the last seat of the last step
    reused = await client.post(f"/api/approval-links/{valid}")
    assert reused.status_code == 409 and "already been used" in reused.json()["detail"][0]["msg"]

    async def signed() -> bool:
        return (await contract_row(sessions, contract.id)).status == "signed"

    await wait_until(signed)  # 180,000 CNY: legal and finance suffice, no director step

    async def won_and_ordered() -> bool:
        async with sessions() as session:
            row = await session.get(Deal, deal["id"])
            order = await session.scalar(select(Order).where(Order.contract_id == contract.id))
            return row is not None and row.status == "won" and order is not None

    await wait_until(won_and_ordered)
    deal_handle = worker.client.get_workflow_handle(settings.workflow_id("deal", deal["id"]))
    await record_history(deal_handle, "deal_negotiation_contract_won")
    trail = (await client.get(f"/api/contracts/{contract.id}", headers=rep)).json()["approvals"]
    assert [(a["status"], a["via"], a["comment"]) for a in trail] == [
        ("approved", "inbox", "条款无误"), ("approved", "link", None)]
    assert await tasks_of(sessions, "approval") == [
        (org.ids["legal"], "done"), (org.ids["finance"], "done")]
    async with sessions() as session:
        kinds = set((await session.scalars(select(TimelineEvent.kind).where(
            TimelineEvent.customer_id == deal["customer_id"]))).all())
    assert {"deal.negotiation", "contract.drafted", "approval.approve", "contract.signed",
            "deal.won"} <= kinds


@pytest.mark.parametrize(("extra", "field"), [
    ({"name": ""}, "name"),
    ({"amount": "-1"}, "amount"),
    ({"amount": "1.234"}, "amount"),
    ({"pipeline": "no-such-line"}, "pipeline"),
    ({"surprise": True}, "surprise"),
    ({"decision_maker_id": 999}, "decision_maker_id"),
])
async def test_bad_deal_input_is_a_422_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, org: Org, sessions: async_sessionmaker[AsyncSession],
    extra: dict, field: str,
) -> None:
    customer_id = await make_customer(client, org.headers["rep"], "宁波北仑港务物流有限公司")
    body = {"name": "北仑 · 堆场扩建", "customer_id": customer_id, **extra}
    response = await client.post("/api/deals", headers=org.headers["rep"], json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][-1] == field
    async with sessions() as session:
        assert await session.scalar(select(Deal.id)) is None
