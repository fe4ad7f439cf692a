"""Merging duplicate customers over HTTP: the review list, the merge, its undo and refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from rapidfuzz import fuzz
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stdnum.cn import uscc

from domain import normalize, timeline
from domain.access import SYSTEM, Role
from domain.audit import AuditLog
from domain.behaviour import BehaviourEvent
from domain.contract.models import Contract
from domain.customer import Contact, Customer, record_purchase
from domain.db import transaction
from domain.deal.models import Deal
from domain.follow_up import FollowUp
from domain.lead.models import Lead
from domain.merge import Merge
from domain.merge.service import links
from domain.order.models import Order
from domain.purchase import Purchase
from domain.quote.models import Quote
from domain.task import Task
from domain.ticket.models import CallRecord, Ticket
from domain.timeline import TimelineEvent
from tests.conftest import Login, MakeUser

Sessions = async_sessionmaker[AsyncSession]


def code(body: str) -> str:
    return body + uscc.calc_check_digit(body)


CODE = code("91310115MA1H7XK20")


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict:
    response = await client.post(
        "/api/customers", params={"allow_duplicate": "true"}, json=fields, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _groups(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict]:
    response = await client.get("/api/customers/duplicates", params={"size": 100}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["items"]


def _ids(groups: list[dict]) -> list[list[int]]:
    return [[c["id"] for c in g["customers"]] for g in groups]


# --- the review list --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shared", "key"),
    [
        ({"credit_code": CODE}, "credit_code"),
        ({"phone": "13800138000"}, "phone"),
        ({"email": "boss@acme.cn"}, "email"),
        ({}, "name"),
    ],
)
async def test_duplicates_found_by_each_key(
    client: httpx.AsyncClient, admin: dict[str, str], shared: dict, key: str
) -> None:
    names = ("云杉科技有限公司", "云杉科技") if key == "name" else ("甲方公司", "乙方集团")
    a = await _create(client, admin, kind="company", name=names[0], **shared)
    b = await _create(client, admin, kind="company", name=names[1], **shared)
    await _create(client, admin, kind="company", name="毫不相干的公司", phone="13900139000")

    groups = await _groups(client, admin)
    assert _ids(groups) == [[a["id"], b["id"]]]
    [reason] = groups[0]["reasons"]
    assert reason["key"] == key
    assert reason["customer_ids"] == [a["id"], b["id"]]
    if key == "name":
        assert reason["score"] == 100.0
    else:
        assert reason["value"] == b[key]


async def test_fuzzy_names_grouped_above_the_threshold_only(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    above = ("北京星河数据服务中心有限公司", "北京星河数据服务中心站有限公司")
    below = ("广州青木数据有限公司", "广州青木数据服务有限公司")
    numbered = ("深圳百味餐饮3号店", "深圳百味餐饮5号店")
    for pair, alike in ((above, True), (below, False)):
        keys = [normalize.company_key(n) for n in pair]
        assert (fuzz.ratio(*keys) >= 90) is alike  # the premise of this test
    rows = {n: await _create(client, admin, kind="company", name=n)
            for n in (*above, *below, *numbered)}

    groups = await _groups(client, admin)
    assert _ids(groups) == [[rows[above[0]]["id"], rows[above[1]]["id"]]]
    [reason] = groups[0]["reasons"]
    assert reason["key"] == "name"
    assert 90 <= reason["score"] < 100


async def test_duplicates_only_among_what_the_caller_may_see(
    client: httpx.AsyncClient, make_user: MakeUser, make_team: Any, login: Login,
    admin: dict[str, str],
) -> None:
    boss = await make_user("boss", Role.sales_manager)
    team = await make_team("华东", manager_id=boss.id)
    mine = await make_user("mine", Role.sales, team_id=team)
    other = await make_user("other", Role.sales)
    a = await _create(client, admin, kind="person", name="林晓", phone="13800138000",
                      owner_id=mine.id)
    b = await _create(client, admin, kind="person", name="林小", phone="13800138000",
                      owner_id=other.id)
    c = await _create(client, admin, kind="person", name="林笑", phone="13800138000",
                      owner_id=mine.id)

    assert _ids(await _groups(client, admin)) == [[a["id"], b["id"], c["id"]]]
    assert _ids(await _groups(client, await login("boss"))) == [[a["id"], c["id"]]]
    assert _ids(await _groups(client, await login("other"))) == []


async def test_duplicates_are_paginated(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for n in range(3):
        for side in "甲乙":
            await _create(client, admin, kind="person", name=f"{side}{n}",
                          email=f"person{n}@example.cn")
    first = await client.get("/api/customers/duplicates", params={"size": 2}, headers=admin)
    second = await client.get(
        "/api/customers/duplicates", params={"size": 2, "page": 2}, headers=admin
    )
    assert first.json()["total"] == second.json()["total"] == 3
    assert len(first.json()["items"]) == 2 and len(second.json()["items"]) == 1
    bad = await client.get("/api/customers/duplicates", params={"size": 0}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "size"


# --- merge and undo ---------------------------------------------------------------------------


async def _related(sessions: Sessions, customer_id: int, tag: str) -> None:
    """One row of every kind that points at a customer, and a purchase in its summary."""
    async with transaction(sessions) as session:
        contact = Contact(customer_id=customer_id, name=f"联系人{tag}")
        deal = Deal(customer_id=customer_id, name=f"商机{tag}")
        session.add_all([contact, deal])
        await session.flush()
        session.add_all([
            Lead(customer_id=customer_id, contact_name=f"线索{tag}"),
            Quote(number=f"Q-{tag}", deal_id=deal.id, customer_id=customer_id),
            Contract(number=f"C-{tag}", title="合同", customer_id=customer_id,
                     amount=Decimal("100")),
            Order(number=f"O-{tag}", customer_id=customer_id, amount=Decimal("100"),
                  ordered_on=date(2026, 1, 5)),
            Ticket(customer_id=customer_id, type="consultation", subject=f"工单{tag}"),
            FollowUp(customer_id=customer_id, kind="call", at=datetime.now(UTC),
                     summary="电话"),
            Task(key=f"merge-test-{tag}", kind="todo", title="回访", customer_id=customer_id),
            CallRecord(call_id=f"call-{tag}", caller="13800138000", direction="in",
                       duration_seconds=30, started_at=datetime.now(UTC),
                       customer_id=customer_id),
            BehaviourEvent(kind="page_view", customer_id=customer_id),
            Purchase(customer_id=customer_id, purchased_on=date(2026, 1, 5) + timedelta(
                days=len(tag)), amount=Decimal("250.50"), reference=f"ref-{tag}"),
        ])
        timeline.add(session, customer_id=customer_id, kind="note", summary=tag, actor=SYSTEM)
        await record_purchase(session, customer_id=customer_id,
                              on=date(2026, 1, 5) + timedelta(days=len(tag)),
                              amount=Decimal("250.50"))


async def _state(sessions: Sessions) -> dict[str, Any]:
    """Every customer's columns and tags, and the customer of every row that points at one."""
    async with sessions() as session:
        customers = {
            c.id: {k: v for k, v in vars(c).items()
                   if not k.startswith("_") and k not in ("updated_at", "tag_rows")}
            | {"tags": c.tags}
            for c in await session.scalars(select(Customer))
        }
        rows = {
            link.name: dict((await session.execute(select(link.key, link.column))).all())
            for link in links()
        }
    return {"customers": customers, "rows": rows}


@pytest.fixture
async def pair(
    client: httpx.AsyncClient, admin: dict[str, str], sessions: Sessions
) -> tuple[dict, dict, dict]:
    """A survivor, two duplicates of it, each with related rows; a subsidiary of one of them."""
    survivor = await _create(client, admin, kind="company", name="云杉科技有限公司",
                             phone="13800138000", tags=["重点"])
    first = await _create(client, admin, kind="company", name="云杉科技(上海)有限公司",
                          phone="13800138000", email="info@yunshan.cn", city="上海",
                          tags=["华东"], notes="老客户")
    second = await _create(client, admin, kind="company", name="云杉科技", credit_code=CODE,
                           industry="软件", tags=["华东", "续约"])
    await _create(client, admin, kind="company", name="云杉科技北京分公司",
                  parent_id=second["id"], referrer_id=first["id"])
    for row, tag in ((survivor, "s"), (first, "a1"), (second, "a22")):
        await _related(sessions, row["id"], tag)
    return survivor, first, second


async def test_merge_moves_every_related_row_and_undo_restores_it_exactly(
    client: httpx.AsyncClient, admin: dict[str, str], sessions: Sessions,
    pair: tuple[dict, dict, dict],
) -> None:
    survivor, first, second = pair
    before = await _state(sessions)

    response = await client.post("/api/customers/merge", headers=admin, json={
        "survivor_id": survivor["id"], "absorbed_ids": [first["id"], second["id"]],
        "fields": {"city": second["id"]},
    })
    assert response.status_code == 201, response.text
    merge = response.json()
    merged = await _state(sessions)
    absorbed = {first["id"], second["id"]}
    for name, owners in before["rows"].items():
        for row_id, owner in owners.items():
            want = survivor["id"] if owner in absorbed else owner
            assert merged["rows"][name][row_id] == want, (name, row_id)
    assert {name for moved in merge["moved"].values() for name in moved} == {
        link.name for link in links()
    } | {"customers.parent_id", "customers.referrer_id"}

    profile = (await client.get(f"/api/customers/{survivor['id']}", headers=admin)).json()
    assert profile["email"] == "info@yunshan.cn"  # empty on the survivor: filled in
    assert profile["credit_code"] == CODE
    assert profile["notes"] == "老客户"
    assert profile["city"] is None  # chosen from the second, which has none
    assert profile["name"] == "云杉科技有限公司"
    assert profile["tags"] == sorted(["华东", "重点", "续约"])
    assert profile["purchase_count"] == 3
    assert Decimal(profile["total_amount"]) == Decimal("751.50")
    assert profile["first_purchase_on"] == "2026-01-06"
    assert profile["last_purchase_on"] == "2026-01-08"

    gone = await client.get(f"/api/customers/{first['id']}", headers=admin)
    assert gone.status_code == 404 and gone.json()["merged_into"] == survivor["id"]
    async with sessions() as session:
        actions = {(a.action, a.entity_id) for a in await session.scalars(
            select(AuditLog).where(AuditLog.action.startswith("merge")))}
    assert actions == {("merge", survivor["id"]), ("merge", first["id"]),
                       ("merge", second["id"])}

    undone = await client.post(f"/api/merges/{merge['id']}/undo", headers=admin)
    assert undone.status_code == 200, undone.text
    after = await _state(sessions)
    assert after["customers"] == before["customers"]
    for name, owners in before["rows"].items():
        assert {i: after["rows"][name][i] for i in owners} == owners, name
    new_events = set(after["rows"]["timeline_events.customer_id"]) - set(
        before["rows"]["timeline_events.customer_id"])
    async with sessions() as session:
        kinds = {e.kind for e in await session.scalars(
            select(TimelineEvent).where(TimelineEvent.id.in_(new_events)))}
        actions = [a.entity_id for a in await session.scalars(
            select(AuditLog).where(AuditLog.action == "merge_undo"))]
    assert kinds == {"customer.merged", "customer.merge_undone"}
    assert sorted(actions) == sorted([survivor["id"], first["id"], second["id"]])
    back = await client.get(f"/api/customers/{first['id']}", headers=admin)
    assert back.status_code == 200

    again = await client.post(f"/api/merges/{merge['id']}/undo", headers=admin)
    assert again.status_code == 409 and again.json()["detail"][0]["loc"] == ["merge_id"]


async def test_field_choice_wins_and_name_key_follows(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    survivor = await _create(client, admin, kind="person", name="林晓", phone="13800138000",
                             city="杭州")
    other = await _create(client, admin, kind="person", name="林小晓", phone="13900139000",
                          city="上海", email="lin@example.cn")
    response = await client.post("/api/customers/merge", headers=admin, json={
        "survivor_id": survivor["id"], "absorbed_ids": [other["id"]],
        "fields": {"name": other["id"], "phone": other["id"]},
    })
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["choices"]["name"] == body["choices"]["phone"] == other["id"]
    assert body["choices"]["city"] == survivor["id"]
    assert body["before"]["phone"] == "+8613800138000"
    assert body["after"]["phone"] == "+8613900139000"
    profile = (await client.get(f"/api/customers/{survivor['id']}", headers=admin)).json()
    assert (profile["name"], profile["phone"], profile["city"], profile["email"]) == (
        "林小晓", "+8613900139000", "杭州", "lin@example.cn")


@pytest.mark.parametrize(
    ("case", "status", "loc"),
    [
        ("survivor_absorbed", 422, ["absorbed_ids"]),
        ("unknown_absorbed", 404, ["absorbed_ids", "0"]),
        ("unknown_survivor", 404, ["survivor_id"]),
        ("not_a_field", 422, ["fields", "deleted_at"]),
        ("summary_field", 422, ["fields", "total_amount"]),
        ("wrong_source", 422, ["fields", "phone"]),
        ("person_field", 422, ["fields", "gender"]),
        ("other_kind", 422, ["absorbed_ids", "0"]),
        ("unseen", 404, ["absorbed_ids", "0"]),
        ("rep", 403, []),
        ("empty", 422, ["body", "absorbed_ids"]),
    ],
)
async def test_bad_merges_name_the_field_and_change_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], make_user: MakeUser, make_team: Any,
    login: Login, sessions: Sessions, case: str, status: int, loc: list[str],
) -> None:
    boss = await make_user("boss", Role.sales_manager)
    team = await make_team("华东", manager_id=boss.id)
    mine = await make_user("mine", Role.sales, team_id=team)
    other = await make_user("other", Role.sales)
    survivor = await _create(client, admin, kind="company", name="云杉科技",
                             owner_id=mine.id, phone="13800138000")
    absorbed = await _create(client, admin, kind="company", name="云杉科技有限公司",
                             owner_id=mine.id, email="a@b.cn")
    unseen = await _create(client, admin, kind="company", name="云杉", owner_id=other.id)
    person = await _create(client, admin, kind="person", name="林晓", owner_id=mine.id)
    body: dict[str, Any] = {"survivor_id": survivor["id"], "absorbed_ids": [absorbed["id"]]}
    headers = await login("boss")
    match case:
        case "survivor_absorbed":
            body["absorbed_ids"] = [absorbed["id"], survivor["id"]]
        case "unknown_absorbed":
            body["absorbed_ids"] = [999_999]
        case "unknown_survivor":
            body["survivor_id"] = 999_999
        case "not_a_field":
            body["fields"] = {"deleted_at": absorbed["id"]}
        case "summary_field":
            body["fields"] = {"total_amount": absorbed["id"]}
        case "wrong_source":
            body["fields"] = {"phone": unseen["id"]}
        case "person_field":
            body["fields"] = {"gender": absorbed["id"]}
        case "other_kind":
            body["absorbed_ids"] = [person["id"]]
        case "unseen":
            body["absorbed_ids"] = [unseen["id"]]
        case "rep":
            headers = await login("mine")
        case "empty":
            body["absorbed_ids"] = []
    before = await _state(sessions)
    response = await client.post("/api/customers/merge", headers=headers, json=body)
    assert response.status_code == status, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert await _state(sessions) == before
    async with sessions() as session:
        assert await session.scalar(select(Merge.id)) is None


async def test_same_purchase_on_two_customers_refuses_the_merge(
    client: httpx.AsyncClient, admin: dict[str, str], sessions: Sessions
) -> None:
    a = await _create(client, admin, kind="person", name="林晓", phone="13800138000")
    b = await _create(client, admin, kind="person", name="林晓", phone="13800138000")
    async with transaction(sessions) as session:
        for row in (a, b):
            session.add(Purchase(customer_id=row["id"], purchased_on=date(2026, 1, 5),
                                 amount=Decimal("10"), reference="SO-1"))
    response = await client.post("/api/customers/merge", headers=admin,
                                 json={"survivor_id": a["id"], "absorbed_ids": [b["id"]]})
    assert response.status_code == 409
    assert response.json()["detail"][0]["loc"] == ["purchases"]


async def _merged(client: httpx.AsyncClient, admin: dict[str, str]) -> tuple[dict, dict, dict]:
    survivor = await _create(client, admin, kind="person", name="林晓", phone="13800138000")
    other = await _create(client, admin, kind="person", name="林晓", email="lin@example.cn")
    response = await client.post("/api/customers/merge", headers=admin, json={
        "survivor_id": survivor["id"], "absorbed_ids": [other["id"]]})
    assert response.status_code == 201, response.text
    return survivor, other, response.json()


async def test_undo_after_the_window_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str], sessions: Sessions
) -> None:
    _survivor, other, merge = await _merged(client, admin)
    async with transaction(sessions) as session:
        await session.execute(update(Merge).values(
            created_at=datetime.now(UTC) - timedelta(days=30, minutes=1)))
    response = await client.post(f"/api/merges/{merge['id']}/undo", headers=admin)
    assert response.status_code == 409
    assert response.json()["detail"][0]["loc"] == ["merge_id"]
    assert "30 days" in response.json()["detail"][0]["msg"]
    gone = await client.get(f"/api/customers/{other['id']}", headers=admin)
    assert gone.status_code == 404


async def test_undo_refused_when_the_survivor_was_edited_since(
    client: httpx.AsyncClient, admin: dict[str, str], sessions: Sessions
) -> None:
    survivor, _other, merge = await _merged(client, admin)
    assert merge["after"]["email"] == "lin@example.cn"
    edit = await client.patch(f"/api/customers/{survivor['id']}", headers=admin,
                              json={"email": "new@example.cn"})
    assert edit.status_code == 200, edit.text
    response = await client.post(f"/api/merges/{merge['id']}/undo", headers=admin)
    assert response.status_code == 409
    assert response.json()["detail"][0]["loc"] == ["email"]
    async with sessions() as session:
        row = await session.get(Merge, merge["id"])
        assert row is not None and row.undone_at is None


async def test_merges_are_for_managers_who_see_the_survivor(
    client: httpx.AsyncClient, admin: dict[str, str], make_user: MakeUser, login: Login
) -> None:
    _survivor, _other, merge = await _merged(client, admin)
    await make_user("boss", Role.sales_manager)
    boss = await login("boss")
    assert (await client.get(f"/api/merges/{merge['id']}", headers=boss)).status_code == 404
    shown = await client.get(f"/api/merges/{merge['id']}", headers=admin)
    assert shown.status_code == 200
    assert shown.json()["undo_until"].startswith(
        (datetime.fromisoformat(merge["created_at"]) + timedelta(days=30)).date().isoformat())
    refused = await client.post(f"/api/merges/{merge['id']}/undo", headers=boss)
    assert refused.status_code == 404
