"""Leads over HTTP with a real worker on the dev server: dedupe, pool, claim, convert."""

from __future__ import annotations

import httpx
import pytest
from rapidfuzz import fuzz
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from domain import normalize
from domain.customer import Contact, Customer
from domain.deal import Deal
from domain.lead import Lead
from domain.policy import PolicyKind
from domain.settings import Settings
from tests.histories import record_history
from tests.leads import SalesTeam, capture, publish, settled


async def _count_leads(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count(Lead.id))) or 0


async def test_the_same_person_through_form_api_and_another_phone_format_is_one_lead(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    team: SalesTeam, admin: dict[str, str],
) -> None:
    form = await client.post("/api/lead-forms", headers=admin, json={
        "slug": "expo", "name": "展会报名", "fields": ["contact_name", "phone", "company"],
        "required": ["phone"], "source": "展会", "thank_you": "谢谢，我们会尽快联系您"})
    assert form.status_code == 201, form.text
    posted = await client.post("/forms/expo", data={"contact_name": "王女士",
                                                     "phone": "138 0013 8000"})
    assert posted.status_code == 200
    again = await capture(client, admin, contact_name="王女士", phone="+86-138-0013-8000")
    third = await capture(client, admin, phone="008613800138000", email="wang@example.cn")

    assert await _count_leads(sessions) == 1
    assert again["created"] is False and third["created"] is False
    assert again["lead"]["id"] == third["lead"]["id"]
    assert again["matches"][0]["kind"] == "lead"
    assert again["lead"]["source"] == "展会"


@pytest.mark.parametrize(("name", "matched"), [
    ("上海云杉智能讯息科技有限公司", True),    # 90% like the customer's folded name
    ("上海云山智能信息技术有限公司", False),   # 80%: a different company
])
async def test_similar_company_names_match_above_the_threshold_only(
    worker: Worker, client: httpx.AsyncClient, team: SalesTeam, admin: dict[str, str],
    settings: Settings, name: str, matched: bool,
) -> None:
    existing = (await client.post("/api/customers", headers=admin, json={
        "kind": "company", "name": "上海云杉智能信息科技有限公司",
        "owner_id": team.ids["rep2"]})).json()
    similarity = fuzz.ratio(normalize.company_key(name), existing_key := normalize.company_key(
        existing["name"]))
    assert (similarity >= settings.lead_fuzzy_threshold) is matched, (existing_key, similarity)

    answer = await capture(client, admin, company=name, phone="13900139000")
    if matched:
        assert answer["lead"]["customer_id"] == existing["id"]
        assert answer["matches"][0]["field"] == "company"
    else:
        assert answer["lead"]["customer_id"] is None and answer["matches"] == []


async def test_a_matched_customers_active_owner_gets_the_lead(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    team: SalesTeam, admin: dict[str, str],
) -> None:
    await client.post("/api/customers", headers=admin, json={
        "kind": "person", "name": "林晓", "phone": "13700137000", "owner_id": team.ids["rep2"]})
    lead = (await capture(client, admin, contact_name="林晓", phone="137 0013 7000"))["lead"]
    row = await settled(sessions, lead["id"], lambda r: r.owner_id is not None)
    assert (row.owner_id, row.assigned_rule) == (team.ids["rep2"], "existing customer owner")


async def test_pool_claim_limits_and_cooldown(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    team: SalesTeam, admin: dict[str, str],
) -> None:
    await publish(sessions, PolicyKind.pool, {"daily_claim_limit": 1, "cooldown": "P7D"})
    await publish(sessions, PolicyKind.lead_sla, {"default_chain": {
        "name": "live", "business_hours": False,
        "steps": [{"after": "PT1S", "action": "return_to_pool"}]}})
    first = (await capture(client, admin, phone="13800138001"))["lead"]
    pooled = await settled(sessions, first["id"], lambda r: r.status == "pooled")
    assert pooled.pooled_from_id == team.ids["rep1"]

    own = await client.post(f"/api/pool/{first['id']}/claim", headers=team.headers["rep1"])
    assert own.status_code == 409 and own.json()["detail"][0]["loc"] == ["cooldown"]
    taken = await client.post(f"/api/pool/{first['id']}/claim", headers=team.headers["rep2"])
    assert taken.status_code == 200, taken.text
    assert (taken.json()["status"], taken.json()["owner_id"]) == ("assigned", team.ids["rep2"])

    await publish(sessions, PolicyKind.assignment, {})  # nobody: new leads go to the pool
    second = (await capture(client, admin, phone="13800138002"))["lead"]
    await settled(sessions, second["id"], lambda r: r.status == "pooled")
    limit = await client.post(f"/api/pool/{second['id']}/claim", headers=team.headers["rep2"])
    assert limit.status_code == 409 and limit.json()["detail"][0]["loc"] == ["daily_claim_limit"]
    # The claimed lead runs the same one-second chain for its new owner and comes back.
    again = await settled(sessions, first["id"], lambda r: r.status == "pooled"
                          and r.pooled_from_id == team.ids["rep2"])
    assert again.owner_id is None
    listed = (await client.get("/api/pool", headers=team.headers["rep2"])).json()
    assert [lead["id"] for lead in listed["items"]] == [first["id"], second["id"]]


async def test_claiming_restarts_the_sla_for_the_new_owner(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    team: SalesTeam, admin: dict[str, str],
) -> None:
    await publish(sessions, PolicyKind.assignment, {})
    lead = (await capture(client, admin, phone="13800138003"))["lead"]
    await settled(sessions, lead["id"], lambda r: r.status == "pooled")
    claimed = await client.post(f"/api/pool/{lead['id']}/claim", headers=team.headers["rep1"])
    assert claimed.status_code == 200, claimed.text
    row = await settled(sessions, lead["id"], lambda r: r.sla_due_at is not None)
    assert row.sla_next_action == "notify_owner" and row.assigned_rule == "claimed from pool"


async def test_follow_up_contacts_then_convert_creates_customer_contact_and_deal(
    worker: Worker, client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    team: SalesTeam, admin: dict[str, str], temporal_client: Client, settings: Settings,
) -> None:
    lead = (await capture(client, admin, contact_name="王女士", company="杭州青禾食品有限公司",
                          phone="13800138000", product_interest="冷链系统"))["lead"]
    await settled(sessions, lead["id"], lambda r: r.sla_due_at is not None)
    rep = team.headers["rep1"]
    noted = await client.post(f"/api/leads/{lead['id']}/follow-ups", headers=rep,
                              json={"kind": "call", "summary": "有预算，下月采购"})
    assert noted.status_code == 201, noted.text
    assert (await client.get(f"/api/leads/{lead['id']}", headers=rep)).json()["status"] == \
        "contacted"
    assert (await client.post(f"/api/leads/{lead['id']}/qualify", headers=rep)).status_code == 200
    done = await client.post(f"/api/leads/{lead['id']}/convert", headers=rep,
                             json={"amount": "120000.00"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "converted"

    handle = temporal_client.get_workflow_handle(settings.workflow_id("lead", lead["id"]))
    assert await handle.result() == "converted"
    await record_history(handle, "lead_contact_qualify_convert")
    async with sessions() as session:
        owner = await session.get(Customer, body["customer_id"])
        contact = await session.get(Contact, body["contact_id"])
        deal = await session.get(Deal, body["deal_id"])
    assert (owner.kind, owner.name, owner.owner_id) == ("company", "杭州青禾食品有限公司",
                                                        team.ids["rep1"])
    assert (contact.name, contact.mobile) == ("王女士", "+8613800138000")
    assert (deal.customer_id, deal.lead_id, str(deal.amount)) == (owner.id, lead["id"],
                                                                  "120000.00")
    history = (await client.get(f"/api/customers/{owner.id}/timeline", headers=rep)).json()
    kinds = {e["kind"] for e in history["items"]}
    assert {"follow_up.call", "lead.convert", "customer.created"} <= kinds
