"""The golden customer profile over HTTP: normalise, guard duplicates, search, own, audit."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from stdnum.cn import uscc

from domain import customer
from domain.access import Role
from domain.audit import AuditLog
from domain.db import transaction
from tests.conftest import Login, MakeUser


def code(body: str) -> str:
    """A valid unified social credit code from its first 17 characters."""
    return body + uscc.calc_check_digit(body)


CODE = code("91310115MA1H7XK20")


async def _create(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict:
    response = await client.post("/api/customers", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def rep(make_user: MakeUser, login: Login) -> dict[str, str]:
    await make_user("rep1", Role.sales)
    return await login("rep1")


async def test_company_is_normalised_on_create(
    client: httpx.AsyncClient, rep: dict[str, str]
) -> None:
    body = await _create(
        client, rep, kind="company", name="  上海云杉信息科技（上海）有限公司 ",
        credit_code=CODE.lower(), phone="021-6888 8888", email="Info@YunShan.CN",
        website="www.yunshan.cn", tags=["重点", "重点", "华东"],
    )
    assert body["name"] == "上海云杉信息科技(上海)有限公司"
    assert body["credit_code"] == CODE
    assert body["phone"] == "+862168888888"
    assert body["email"] == "info@yunshan.cn"
    assert body["website"] == "http://www.yunshan.cn"
    assert body["tags"] == ["华东", "重点"]
    assert body["stage"] == "prospect"
    assert body["total_amount"] == "0.00" or Decimal(body["total_amount"]) == 0


async def test_rep_becomes_owner_of_what_they_create(
    client: httpx.AsyncClient, rep: dict[str, str]
) -> None:
    me = (await client.get("/api/auth/me", headers=rep)).json()
    body = await _create(client, rep, kind="person", name="林晓", phone="13800138000")
    assert body["owner_id"] == me["id"]


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        ({"credit_code": CODE}, {"credit_code": CODE.lower()}, "credit_code"),
        ({"phone": "+86 138 0013 8000"}, {"phone": "13800138000"}, "phone"),
        ({"email": "boss@acme.cn"}, {"email": "BOSS@acme.CN"}, "email"),
        ({}, {"name": "（示例）云杉科技 有限责任公司"}, "name"),
    ],
)
async def test_duplicates_are_409_with_the_existing_record_and_field(
    client: httpx.AsyncClient, rep: dict[str, str], first: dict, second: dict, field: str
) -> None:
    existing = await _create(client, rep, kind="company", name="(示例)云杉科技有限公司", **first)
    attempt = {"kind": "company", "name": "另一家公司", **second}
    response = await client.post("/api/customers", json=attempt, headers=rep)
    assert response.status_code == 409
    assert response.json()["existing_id"] == existing["id"]
    assert response.json()["detail"][0]["loc"] == [field]
    assert response.json()["detail"][0]["type"] == "duplicate"

    forced = await client.post("/api/customers?allow_duplicate=true", json=attempt, headers=rep)
    assert forced.status_code == 201


async def test_update_into_a_duplicate_is_409_too(
    client: httpx.AsyncClient, rep: dict[str, str]
) -> None:
    await _create(client, rep, kind="person", name="甲", phone="13800138000")
    other = await _create(client, rep, kind="person", name="乙", phone="13900139000")
    response = await client.patch(f"/api/customers/{other['id']}", json={"phone": "138-0013-8000"},
                                  headers=rep)
    assert response.status_code == 409
    assert response.json()["detail"][0]["loc"] == ["phone"]


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"kind": "company", "name": "甲", "credit_code": "91310115MA1H7XK20X"}, ["credit_code"]),
        ({"kind": "person", "name": "甲", "phone": "12345"}, ["phone"]),
        ({"kind": "person", "name": "甲", "email": "not-an-email"}, ["email"]),
        ({"kind": "person", "name": "甲", "credit_code": CODE}, ["credit_code"]),
        ({"kind": "company", "name": "甲", "gender": "male"}, ["gender"]),
        ({"kind": "company", "name": "甲", "colour": "red"}, ["body", "colour"]),
        ({"kind": "robot", "name": "甲"}, ["body", "kind"]),
        ({"kind": "company", "name": "甲", "owner_id": 999999}, ["owner_id"]),
        ({"kind": "company", "name": "甲", "owner_id": 2**40}, ["body", "owner_id"]),
        ({"kind": "company", "name": "\x00"}, ["body", "name"]),
        ({"kind": "company", "name": "甲", "custom": {"nope": 1}}, ["custom", "nope"]),
    ],
)
async def test_bad_input_is_4xx_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient, admin: dict[str, str], sessions, fields: dict, loc: list[str]
) -> None:
    response = await client.post("/api/customers", json=fields, headers=admin)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["detail"][0]["loc"] == loc
    async with sessions() as session:
        assert await session.scalar(select(customer.Customer.id)) is None


async def test_custom_fields_are_validated_and_filterable(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for definition in (
        {"entity": "customer", "key": "tier", "label": "客户等级", "type": "single_select",
         "options": ["A", "B"], "required": True},
        {"entity": "customer", "key": "budget", "label": "预算", "type": "money",
         "min_value": "0"},
    ):
        assert (await client.post("/api/custom-fields", json=definition,
                                  headers=admin)).status_code == 201
    missing = await client.post("/api/customers", json={"kind": "person", "name": "甲"},
                                headers=admin)
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["custom", "tier"]
    wrong = await client.post("/api/customers", headers=admin, json={
        "kind": "person", "name": "甲", "custom": {"tier": "Z"}})
    assert wrong.status_code == 422 and "A, B" in wrong.json()["detail"][0]["msg"]
    negative = await client.post("/api/customers", headers=admin, json={
        "kind": "person", "name": "甲", "custom": {"tier": "A", "budget": "-1"}})
    assert negative.json()["detail"][0]["loc"] == ["custom", "budget"]

    a = await _create(client, admin, kind="person", name="甲", custom={"tier": "A",
                                                                      "budget": 1200.5})
    await _create(client, admin, kind="person", name="乙", custom={"tier": "B"})
    assert a["custom"] == {"tier": "A", "budget": "1200.50"}
    found = (await client.get("/api/customers?cf.tier=A", headers=admin)).json()
    assert [c["id"] for c in found["items"]] == [a["id"]]
    unknown = await client.get("/api/customers?cf.colour=red", headers=admin)
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["custom",
                                                                               "colour"]


async def test_renaming_and_retiring_a_field_keeps_values(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    field = (await client.post("/api/custom-fields", headers=admin, json={
        "entity": "customer", "key": "hobby", "label": "爱好", "type": "text"})).json()
    row = await _create(client, admin, kind="person", name="甲", custom={"hobby": "围棋"})
    await client.patch(f"/api/custom-fields/{field['id']}", json={"label": "兴趣"}, headers=admin)
    await client.post(f"/api/custom-fields/{field['id']}/retire", headers=admin)
    kept = (await client.get(f"/api/customers/{row['id']}", headers=admin)).json()
    assert kept["custom"] == {"hobby": "围棋"}
    refused = await client.patch(f"/api/customers/{row['id']}", headers=admin,
                                 json={"custom": {"hobby": "象棋"}})
    assert refused.status_code == 422


async def test_search_by_name_phone_email_code_tag_owner_stage_city(
    client: httpx.AsyncClient, admin: dict[str, str], make_user: MakeUser
) -> None:
    owner = await make_user("rep9", Role.sales)
    a = await _create(client, admin, kind="company", name="杭州青禾食品股份有限公司",
                      credit_code=CODE, city="杭州", tags=["食品"], owner_id=owner.id,
                      stage="customer")
    b = await _create(client, admin, kind="person", name="林晓", phone="13800138000",
                      email="lin@example.cn", city="南京")

    async def ids(query: str) -> list[int]:
        response = await client.get(f"/api/customers?{query}", headers=admin)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert await ids("q=青禾") == [a["id"]]
    assert await ids("q=138 0013 8000") == [b["id"]]
    assert await ids("q=LIN@example.cn") == [b["id"]]
    assert await ids(f"q={CODE.lower()}") == [a["id"]]
    assert await ids("tag=食品") == [a["id"]]
    assert await ids(f"owner_id={owner.id}") == [a["id"]]
    assert await ids("stage=customer") == [a["id"]]
    assert await ids("city=南京") == [b["id"]]
    assert await ids("phone=%2B8613800138000") == [b["id"]]
    assert await ids("sort=name&size=1&page=2") == [b["id"]] or await ids(
        "sort=name&size=1&page=1") == [b["id"]]
    page = (await client.get("/api/customers?size=1&sort=-created_at", headers=admin)).json()
    assert (page["total"], page["size"], [c["id"] for c in page["items"]]) == (2, 1, [b["id"]])
    assert await ids("q=100%25") == []


async def test_reps_see_their_own_managers_their_team_admins_all(
    client: httpx.AsyncClient, make_user: MakeUser, make_team, login: Login,
    admin: dict[str, str],
) -> None:
    boss = await make_user("boss", Role.sales_manager)
    team = await make_team("华东", manager_id=boss.id)
    mine = await make_user("rep1", Role.sales, team_id=team)
    theirs = await make_user("rep2", Role.sales)
    a = await _create(client, admin, kind="person", name="甲", owner_id=mine.id)
    b = await _create(client, admin, kind="person", name="乙", owner_id=theirs.id)
    rep1, manager = await login("rep1"), await login("boss")

    listed = (await client.get("/api/customers", headers=rep1)).json()
    assert [c["id"] for c in listed["items"]] == [a["id"]]
    assert (await client.get(f"/api/customers/{b['id']}", headers=rep1)).status_code == 404
    assert (await client.patch(f"/api/customers/{b['id']}", json={"city": "x"},
                               headers=rep1)).status_code == 404
    team_view = (await client.get("/api/customers", headers=manager)).json()
    assert [c["id"] for c in team_view["items"]] == [a["id"]]
    assert (await client.get("/api/customers", headers=admin)).json()["total"] == 2
    handover = await client.patch(f"/api/customers/{a['id']}", json={"owner_id": theirs.id},
                                  headers=rep1)
    assert handover.status_code == 403 and handover.json()["detail"][0]["loc"] == ["owner_id"]


async def test_contacts_and_the_decision_chain(
    client: httpx.AsyncClient, rep: dict[str, str]
) -> None:
    company = await _create(client, rep, kind="company", name="苏州恒川精密机械有限公司")
    url = f"/api/customers/{company['id']}/contacts"
    boss = (await client.post(url, headers=rep, json={
        "name": "钱总", "title": "总经理", "decision_role": "decision_maker",
        "mobile": "139 0013 9000"})).json()
    buyer = (await client.post(url, headers=rep, json={
        "name": "吴工", "reports_to_id": boss["id"], "decision_role": "influencer"})).json()
    assert boss["mobile"] == "+8613900139000"
    assert buyer["reports_to_id"] == boss["id"]
    loop = await client.patch(f"{url}/{boss['id']}", json={"reports_to_id": buyer["id"]},
                              headers=rep)
    assert loop.status_code == 422 and loop.json()["detail"][0]["loc"] == ["reports_to_id"]
    chain = (await client.get(url, headers=rep)).json()
    assert [(c["name"], c["reports_to_id"]) for c in chain] == [("钱总", None),
                                                                ("吴工", boss["id"])]
    person = await _create(client, rep, kind="person", name="林晓")
    refused = await client.post(f"/api/customers/{person['id']}/contacts", json={"name": "x"},
                                headers=rep)
    assert refused.status_code == 422


async def test_group_tree_refuses_loops(client: httpx.AsyncClient, rep: dict[str, str]) -> None:
    group = await _create(client, rep, kind="company", name="恒川集团")
    child = await _create(client, rep, kind="company", name="恒川苏州", parent_id=group["id"])
    loop = await client.patch(f"/api/customers/{group['id']}", json={"parent_id": child["id"]},
                              headers=rep)
    assert loop.status_code == 422 and loop.json()["detail"][0]["loc"] == ["parent_id"]
    kids = (await client.get(f"/api/customers/{group['id']}/children", headers=rep)).json()
    assert [k["id"] for k in kids] == [child["id"]]


async def test_every_change_is_audited_with_before_and_after(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    row = await _create(client, admin, kind="person", name="林晓", city="南京")
    await client.patch(f"/api/customers/{row['id']}", json={"city": "苏州", "stage": "customer"},
                       headers=admin)
    await client.delete(f"/api/customers/{row['id']}", headers=admin)
    log = (await client.get(f"/api/audit?entity=customer&entity_id={row['id']}",
                            headers=admin)).json()
    assert [e["action"] for e in log] == ["delete", "update", "create"]
    assert log[1]["changes"] == {"city": ["南京", "苏州"], "stage": ["prospect", "customer"]}
    assert log[1]["actor_name"] == "root" and log[1]["source"] == "api"
    assert (await client.get(f"/api/customers/{row['id']}", headers=admin)).status_code == 404


async def test_a_refused_write_leaves_no_audit_entry(
    client: httpx.AsyncClient, admin: dict[str, str], sessions
) -> None:
    row = await _create(client, admin, kind="person", name="林晓")
    refused = await client.patch(f"/api/customers/{row['id']}", headers=admin,
                                 json={"city": "苏州", "phone": "123"})
    assert refused.status_code == 422
    async with sessions() as session:
        actions = (await session.scalars(
            select(AuditLog.action).where(AuditLog.entity == "customer"))).all()
        stored = await session.get(customer.Customer, row["id"])
    assert actions == ["create"]
    assert stored.city is None


async def test_timeline_pages_follow_ups_and_events_newest_first(
    client: httpx.AsyncClient, rep: dict[str, str], worker
) -> None:
    row = await _create(client, rep, kind="person", name="林晓")
    url = f"/api/customers/{row['id']}"
    for summary in ("第一次电话", "第二次电话", "第三次电话"):
        logged = await client.post(f"{url}/follow-ups", headers=rep,
                                   json={"kind": "call", "summary": summary})
        assert logged.status_code == 201, logged.text
    await client.patch(url, json={"stage": "customer"}, headers=rep)
    pages = [(await client.get(f"{url}/timeline?size=2&page={n}", headers=rep)).json()
             for n in (1, 2, 3)]
    events = [e for p in pages for e in p["items"]]
    assert [p["total"] for p in pages] == [5, 5, 5]
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    assert events[0]["kind"] == "customer.stage_changed"
    assert events[-1]["kind"] == "customer.created"
    assert [e["summary"] for e in events if e["kind"] == "follow_up.call"] == [
        "第三次电话", "第二次电话", "第一次电话"]
    only_calls = (await client.get(f"{url}/timeline?kind=follow_up", headers=rep)).json()
    assert only_calls["total"] == 3


async def test_transaction_summary_adds_up(sessions, admin: dict[str, str],
                                          client: httpx.AsyncClient) -> None:
    from datetime import date

    row = await _create(client, admin, kind="person", name="林晓")
    async with transaction(sessions) as session:
        await customer.record_purchase(session, customer_id=row["id"], on=date(2026, 3, 1),
                                       amount=Decimal("100.00"))
        await customer.record_purchase(session, customer_id=row["id"], on=date(2026, 1, 5),
                                       amount=Decimal("250.50"))
    body = (await client.get(f"/api/customers/{row['id']}", headers=admin)).json()
    assert (body["first_purchase_on"], body["last_purchase_on"]) == ("2026-01-05", "2026-03-01")
    assert body["purchase_count"] == 2
    assert Decimal(body["total_amount"]) == Decimal("350.50")
    assert Decimal(body["average_order_value"]) == Decimal("175.25")
    assert body["stage"] == "customer"



async def test_the_total_stops_counting_at_the_cap_and_says_it_is_a_lower_bound(
    client: httpx.AsyncClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from domain.customer import service
    from tests.pages.conftest import web_sign_in

    made = [await _create(client, admin, kind="person", name=f"林{n}") for n in "一二三四五"]
    tagged = await _create(client, admin, kind="person", name="林六", tags=["重点"])
    await _create(client, admin, kind="company", name="恒川集团有限公司", tags=["重点"])
    newest_first = [tagged["id"], *(c["id"] for c in reversed(made))]  # the six named 林

    async def listed(query: str) -> tuple[int, bool, list[int]]:
        """Total, whether it is exact, and the ids of pages 1-4 of two."""
        totals, ids = set(), []
        for n in (1, 2, 3, 4):
            response = await client.get(f"/api/customers?q=林&size=2&page={n}&{query}",
                                        headers=admin)
            assert response.status_code == 200, response.text
            body = response.json()
            totals.add((body["total"], body["total_exact"]))
            ids += [c["id"] for c in body["items"]]
        assert len(totals) == 1, totals
        return (*totals.pop(), ids)

    # Few matches: the page is sorted from the ids read; more: counted, and sorted by SQL.
    for page_from_ids in (1_000, 2):
        monkeypatch.setattr(service, "PAGE_FROM_IDS", page_from_ids)
        monkeypatch.setattr(service, "TOTAL_CAP", 10_000)
        assert await listed("") == (6, True, newest_first)
        assert await listed("sort=created_at") == (6, True, newest_first[::-1])
        assert await listed("tag=重点") == (1, True, [tagged["id"]])
        monkeypatch.setattr(service, "TOTAL_CAP", 3)
        # Six match and three are counted; every page still comes, in order, past the third.
        assert await listed("") == (3, False, newest_first)
        assert await listed("sort=-created_at") == (3, False, newest_first)
        assert await listed("sort=created_at") == (3, False, newest_first[::-1])
        assert await listed("tag=重点") == (1, True, [tagged["id"]])
        monkeypatch.setattr(service, "TOTAL_CAP", 6)  # exactly the cap: exact
        assert await listed("") == (6, True, newest_first)
        monkeypatch.setattr(service, "TOTAL_CAP", 5)
        assert await listed("") == (5, False, newest_first)

    # The list page says "5+" and, with no last page to show, offers "next" after a full page.
    await web_sign_in(client, "root")
    listing = await client.get("/customers?q=林")
    assert listing.status_code == 200
    assert "共 5+ 个客户" in listing.text and "第 1 页" in listing.text
    assert 'rel="next"' not in listing.text  # six fit on the first page of twenty
    client.cookies.set("lang", "en")
    english = await client.get("/customers?q=林")
    assert "5+ customers" in english.text and "Page 1" in english.text
    monkeypatch.setattr(service, "TOTAL_CAP", 3)
    monkeypatch.setattr("api.pages.customer.PAGE_SIZE", 2)
    full = await client.get("/customers?q=林&page=2")
    assert "3+ customers" in full.text and "Page 2" in full.text
    assert 'rel="next"' in full.text and 'rel="prev"' in full.text
    monkeypatch.setattr(service, "TOTAL_CAP", 10_000)
    exact = await client.get("/customers?q=林")
    assert "6 in all" in exact.text and "+ customers" not in exact.text
