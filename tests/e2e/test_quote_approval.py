"""A deep discount needs the sales manager's approval before the quote can be sent: the same
approval chain as contracts, with the quote as its subject (`quote-<id>`), on the dev server."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from tests.conftest import wait_until
from tests.deals import Org, make_customer, pending_for

LINE = {"description": "冷库货架 标准型", "quantity": "10", "unit_price": "12000.00"}


async def _quote(client: httpx.AsyncClient, org: Org, discount: str) -> dict:
    customer_id = await make_customer(client, org.headers["rep"], "厦门海沧物流园有限公司")
    deal = await client.post("/api/deals", headers=org.headers["rep"], json={
        "name": "海沧 · 货架", "customer_id": customer_id})
    assert deal.status_code == 201, deal.text
    quote = await client.post(f"/api/deals/{deal.json()['id']}/quotes", headers=org.headers["rep"],
                              json={"lines": [{**LINE, "discount_pct": discount}]})
    assert quote.status_code == 201, quote.text
    return quote.json()


async def _status(client: httpx.AsyncClient, org: Org, quote_id: int) -> str:
    response = await client.get(f"/api/quotes/{quote_id}", headers=org.headers["rep"])
    return response.json()["status"]


async def test_a_deep_discount_waits_for_the_managers_approval_then_can_be_sent(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    org: Org,
) -> None:
    quote = await _quote(client, org, discount="20")
    submitted = await client.post(f"/api/quotes/{quote['id']}/submit", headers=org.headers["rep"])
    assert submitted.status_code == 200 and submitted.json()["status"] == "pending_approval"
    early = await client.post(f"/api/quotes/{quote['id']}/send", headers=org.headers["rep"])
    assert early.status_code == 409

    (asked,) = await pending_for(sessions, quote["id"], 1, subject="quote")
    assert (asked.assignee_id, asked.step_name) == (org.ids["boss"], "sales_manager")
    sent_back = await client.post(f"/api/tasks/{asked.task_id}/complete",
                                  headers=org.headers["boss"],
                                  json={"decision": "request_changes", "comment": "折扣降到 15%"})
    assert sent_back.status_code == 200, sent_back.text

    async def back_to_draft() -> bool:
        return await _status(client, org, quote["id"]) == "draft"

    await wait_until(back_to_draft)
    edited = await client.patch(f"/api/quotes/{quote['id']}", headers=org.headers["rep"],
                                json={"lines": [{**LINE, "discount_pct": "15"}]})
    assert edited.status_code == 200, edited.text
    again = await client.post(f"/api/quotes/{quote['id']}/submit", headers=org.headers["rep"])
    assert again.status_code == 200 and again.json()["status"] == "pending_approval"

    (second,) = await pending_for(sessions, quote["id"], 1, subject="quote")
    assert second.round == 2
    approved = await client.post(f"/api/tasks/{second.task_id}/complete",
                                 headers=org.headers["boss"], json={"decision": "approve"})
    assert approved.status_code == 200, approved.text

    async def approved_quote() -> bool:
        return await _status(client, org, quote["id"]) == "approved"

    await wait_until(approved_quote)
    sent = await client.post(f"/api/quotes/{quote['id']}/send", headers=org.headers["rep"])
    assert sent.status_code == 200 and sent.json()["status"] == "sent"


async def test_a_small_discount_needs_no_approval(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    org: Org,
) -> None:
    quote = await _quote(client, org, discount="5")
    submitted = await client.post(f"/api/quotes/{quote['id']}/submit", headers=org.headers["rep"])
    assert submitted.status_code == 200 and submitted.json()["status"] == "approved"
    assert await pending_for(sessions, quote["id"], 0, subject="quote") == []
