"""Web forms: admins define them; strangers fill them in as HTML, multipart or JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api import behaviour as behaviour_api
from api import lead_form as lead_form_api
from api.main import create_app
from domain.access import Role
from domain.audit import AuditLog
from domain.behaviour import BehaviourEvent
from domain.lead import Lead
from domain.settings import Settings
from tests.conftest import Login, MakeUser

FORM = {
    "slug": "spring-expo",
    "name": "2026 春季展会咨询",
    "fields": [
        "contact_name",
        "company",
        "phone",
        "email",
        "message",
        "consent",
        "visitor_id",
        "custom.budget",
    ],
    "required": ["contact_name", "phone"],
    "source": "展会",
    "campaign": "2026-spring-expo",
    "thank_you": "感谢您的咨询！",
    "settings": {"rate_limit": 100},
}


def with_routers(application: FastAPI) -> FastAPI:
    """Our routers, unless api.main already includes them."""
    paths = {getattr(r, "path", None) for r in application.router.routes}
    if "/api/events" not in paths:
        application.include_router(behaviour_api.router)
    if "/forms/{slug}" not in paths:
        application.include_router(lead_form_api.router)
    return application


@pytest.fixture
async def app(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], temporal_client: Client
) -> AsyncIterator[FastAPI]:
    application = with_routers(create_app(settings, temporal=temporal_client))
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def form(client: httpx.AsyncClient, admin: dict[str, str]) -> dict:
    field = await client.post(
        "/api/custom-fields",
        json={
            "entity": "lead",
            "key": "budget",
            "label": "预算（万元）",
            "label_en": "Budget",
            "type": "number",
        },
        headers=admin,
    )
    assert field.status_code == 201, field.text
    made = await client.post("/api/lead-forms", json=FORM, headers=admin)
    assert made.status_code == 201, made.text
    return made.json()


async def _leads(sessions: async_sessionmaker[AsyncSession]) -> list[Lead]:
    async with sessions() as session:
        return list((await session.scalars(select(Lead).order_by(Lead.id))).all())


def _problem(response: httpx.Response) -> tuple[int, list[list[str]]]:
    return response.status_code, [d["loc"] for d in response.json()["detail"]]


# --- admin -----------------------------------------------------------------------------------


async def test_admin_defines_forms_and_bad_definitions_name_the_field(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    make_user: MakeUser,
    login: Login,
    form: dict,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    assert form["path"] == "/forms/spring-expo"
    assert form["settings"] == {"honeypot": "website", "rate_limit": 100}
    assert (form["source"], form["campaign"], form["active"]) == ("展会", "2026-spring-expo", True)

    async def create(**change: Any) -> httpx.Response:
        return await client.post("/api/lead-forms", json={**FORM, **change}, headers=admin)

    assert _problem(await create()) == (409, [["slug"]])
    assert _problem(await create(slug="Spring Expo")) == (422, [["body", "slug"]])
    assert _problem(await create(slug="x")) == (422, [["body", "slug"]])
    source = await create(slug="other", fields=["phone", "source"])
    assert _problem(source) == (422, [["body", "fields"]])
    assert "'source' cannot be on a public form" in source.json()["detail"][0]["msg"]
    assert _problem(await create(slug="other", fields=["phone", "phone"])) == (
        422,
        [["body", "fields"]],
    )
    assert _problem(await create(slug="other", required=["city"])) == (422, [["required"]])
    assert _problem(await create(slug="other", fields=["company"], required=[])) == (
        422,
        [["fields"]],
    )
    assert _problem(await create(slug="other", fields=["phone", "custom.nope"], required=[])) == (
        422,
        [["fields"]],
    )
    assert _problem(await create(slug="other", settings={"honeypot": "phone"})) == (
        422,
        [["settings"]],
    )
    assert _problem(await create(slug="other", settings={"rate_limit": 0})) == (
        422,
        [["body", "settings", "rate_limit"]],
    )
    assert _problem(await create(slug="other", owner_id=1)) == (422, [["body", "owner_id"]])

    url = f"/api/lead-forms/{form['id']}"
    assert (await client.get(url, headers=admin)).json() == form
    assert [f["slug"] for f in (await client.get("/api/lead-forms", headers=admin)).json()] == [
        "spring-expo"
    ]
    changed = await client.patch(url, json={"name": "春季展会", "campaign": None}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["campaign"]) == ("春季展会", None)
    assert _problem(await client.patch(url, json={"name": None}, headers=admin)) == (
        422,
        [["body", "name"]],
    )
    assert _problem(await client.patch(url, json={"required": ["city"]}, headers=admin)) == (
        422,
        [["required"]],
    )
    other = await create(slug="other-form", settings={})
    assert other.status_code == 201, other.text
    assert other.json()["settings"] == {"honeypot": "website", "rate_limit": 5}
    assert _problem(await client.patch(url, json={"slug": "other-form"}, headers=admin)) == (
        409,
        [["slug"]],
    )
    assert _problem(await client.get("/api/lead-forms/9999", headers=admin)) == (404, [["form_id"]])

    await make_user("rep1", Role.sales)
    rep = await login("rep1")
    assert (await client.get("/api/lead-forms", headers=rep)).status_code == 403
    by_rep = await client.post("/api/lead-forms", json={**FORM, "slug": "rep"}, headers=rep)
    assert by_rep.status_code == 403
    async with sessions() as session:
        actions = (
            await session.scalars(
                select(AuditLog.action)
                .where(AuditLog.entity == "lead_form", AuditLog.entity_id == form["id"])
                .order_by(AuditLog.id)
            )
        ).all()
    assert actions == ["create", "update"]


# --- the public form -------------------------------------------------------------------------


async def test_page_shows_the_fields_and_a_css_hidden_honeypot(
    client: httpx.AsyncClient, form: dict
) -> None:
    page = await client.get("/forms/spring-expo?visitor_id=v-7")
    assert page.status_code == 200
    html = page.text
    assert "2026 春季展会咨询" in html and "手机号码" in html and "Mobile phone" in html
    assert "预算（万元）" in html
    assert '<div class="hp" aria-hidden="true">' in html
    assert 'type="text" name="website"' in html and 'type="hidden" name="website"' not in html
    assert '<input type="hidden" name="visitor_id" value="v-7">' in html
    assert 'method="post" action="/forms/spring-expo"' in html
    assert "nonce-" in page.headers["content-security-policy"]
    assert (await client.get("/forms/nope")).status_code == 404
    assert (await client.get("/forms/%00")).status_code == 404


async def test_html_post_creates_a_lead_tagged_with_the_forms_source_and_campaign(
    client: httpx.AsyncClient,
    form: dict,
    sessions: async_sessionmaker[AsyncSession],
    worker: Any,
) -> None:
    posted = await client.post(
        "/forms/spring-expo",
        data={
            "contact_name": "王芳",
            "company": "云杉科技",
            "phone": "138 0013 8000",
            "message": "想了解报价",
            "consent": "true",
            "custom.budget": "50",
            "visitor_id": "v-7",
            "website": "",
            "source": "我自己写的",
            "utm_source": "wechat",  # not the form's: ignored
        },
    )
    assert posted.status_code == 200, posted.text
    assert "感谢您的咨询！" in posted.text
    [lead] = await _leads(sessions)
    assert (lead.source, lead.campaign, lead.form_id) == ("展会", "2026-spring-expo", form["id"])
    assert (lead.contact_name, lead.phone, lead.consent) == ("王芳", "+8613800138000", True)
    assert lead.custom == {"budget": "50"}
    assert lead.score == 10 + 10 + 10  # phone, company and the form_submit event
    async with sessions() as session:
        kinds = (await session.scalars(select(BehaviourEvent.kind))).all()
    assert kinds == ["form_submit"]


async def test_json_and_multipart_posts_work_and_never_reveal_the_lead_id(
    client: httpx.AsyncClient,
    form: dict,
    sessions: async_sessionmaker[AsyncSession],
    worker: Any,
) -> None:
    posted = await client.post(
        "/forms/spring-expo",
        json={"contact_name": "李雷", "phone": "13900139000", "custom": {"budget": 12.5}},
    )
    assert posted.status_code == 201, posted.text
    assert posted.json() == {"ok": True, "message": "感谢您的咨询！"}
    assert posted.headers["access-control-allow-origin"] == "*"
    multipart = await client.post(
        "/forms/spring-expo",
        files={"contact_name": (None, "韩梅梅"), "phone": (None, "13700137000")},
    )
    assert multipart.status_code == 200, multipart.text
    leads = await _leads(sessions)
    assert [(lead.contact_name, lead.source) for lead in leads] == [
        ("李雷", "展会"),
        ("韩梅梅", "展会"),
    ]
    assert leads[0].custom == {"budget": "12.5"}


async def test_the_same_person_twice_is_one_lead(
    client: httpx.AsyncClient,
    form: dict,
    sessions: async_sessionmaker[AsyncSession],
    worker: Any,
) -> None:
    first = await client.post(
        "/forms/spring-expo", json={"contact_name": "王芳", "phone": "13800138000"}
    )
    second = await client.post(
        "/forms/spring-expo", json={"contact_name": "王芳", "phone": "+86 138-0013-8000"}
    )
    assert first.json() == second.json() == {"ok": True, "message": "感谢您的咨询！"}
    [lead] = await _leads(sessions)
    assert lead.score == 10 + 10 + 10  # phone + two form_submit events


async def test_a_filled_honeypot_is_answered_like_success_and_keeps_nothing(
    client: httpx.AsyncClient,
    form: dict,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    bot = await client.post(
        "/forms/spring-expo",
        json={"contact_name": "bot", "phone": "13800138000", "website": "http://spam.example"},
    )
    assert (bot.status_code, bot.json()) == (201, {"ok": True, "message": "感谢您的咨询！"})
    html = await client.post("/forms/spring-expo", data={"website": "x", "utm": "y"})
    assert html.status_code == 200 and "感谢您的咨询！" in html.text
    assert await _leads(sessions) == []
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(BehaviourEvent)) == 0


async def test_unknown_and_missing_fields_are_named(
    client: httpx.AsyncClient,
    form: dict,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    unknown = await client.post(
        "/forms/spring-expo",
        json={"contact_name": "王芳", "phone": "13800138000", "source": "x", "owner_id": 1},
    )
    assert _problem(unknown) == (422, [["owner_id"], ["source"]])
    assert unknown.json()["detail"][0]["msg"] == "not a field of this form"
    missing = await client.post("/forms/spring-expo", json={"email": "a@b.cn", "phone": ""})
    assert _problem(missing) == (422, [["contact_name"], ["phone"]])
    assert missing.json()["detail"][0]["msg"] == "required"
    bad = await client.post(
        "/forms/spring-expo",
        json={"contact_name": "王芳", "phone": "12345", "custom.budget": "lots"},
    )
    assert _problem(bad)[0] == 422 and _problem(bad)[1][0] in (["phone"], ["custom", "budget"])
    typed = await client.post("/forms/spring-expo", json={"contact_name": 5, "phone": "1"})
    assert _problem(typed) == (422, [["contact_name"]])
    assert _problem(
        await client.post(
            "/forms/spring-expo", content=b"{", headers={"content-type": "application/json"}
        )
    ) == (422, [["body"]])
    assert _problem(
        await client.post(
            "/forms/spring-expo", content=b"[]", headers={"content-type": "application/json"}
        )
    ) == (422, [["body"]])
    plain = await client.post(
        "/forms/spring-expo", content=b"hi", headers={"content-type": "text/plain"}
    )
    assert plain.status_code == 415
    # a person gets the form back with the problem next to the field and their input kept
    page = await client.post("/forms/spring-expo", data={"company": "云杉科技"})
    assert page.status_code == 422
    assert page.text.count("必填") == 2 and 'value="云杉科技"' in page.text
    wrong_phone = await client.post(
        "/forms/spring-expo", data={"contact_name": "王芳", "phone": "12345"}
    )
    assert wrong_phone.status_code == 422 and "不是有效的电话号码" in wrong_phone.text
    assert await _leads(sessions) == []


async def test_the_sixth_post_in_a_minute_from_one_address_is_429(
    client: httpx.AsyncClient, app: FastAPI, admin: dict[str, str], form: dict
) -> None:
    default = {k: v for k, v in FORM.items() if k != "settings"}  # 5 a minute
    made = await client.post("/api/lead-forms", json={**default, "slug": "limited"}, headers=admin)
    assert made.status_code == 201, made.text
    for _ in range(5):
        assert (await client.post("/forms/limited", json={})).status_code == 422
    limited = await client.post("/forms/limited", json={})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert limited.json()["detail"][0]["type"] == "rate_limited"
    page = await client.post("/forms/limited", data={})
    assert page.status_code == 429 and "提交过于频繁" in page.text
    # another address, and another form, have their own allowance
    transport = httpx.ASGITransport(app=app, client=("10.0.0.9", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://dossier.test") as other:
        assert (await other.post("/forms/limited", json={})).status_code == 422
    assert (await client.post("/forms/spring-expo", json={})).status_code == 422


def test_the_window_slides() -> None:
    now = [1000.0]
    limiter = lead_form_api.RateLimiter(window=60, clock=lambda: now[0])
    key = (1, "10.0.0.1")
    assert [limiter.hit(key, 2) for _ in range(2)] == [None, None]
    now[0] += 30
    assert limiter.hit(key, 2) == 30  # the first hit leaves the window in 30 s
    now[0] += 30
    assert limiter.hit(key, 2) is None  # exactly 60 s later both have left
    assert limiter.hit(key, 2) is None
    assert limiter.hit(key, 2) == 60


async def test_unknown_or_inactive_forms_are_404(
    client: httpx.AsyncClient, admin: dict[str, str], form: dict
) -> None:
    assert _problem(await client.post("/forms/nope", json={})) == (404, [["slug"]])
    assert (await client.post("/forms/nope", data={})).status_code == 404
    off = await client.patch(f"/api/lead-forms/{form['id']}", json={"active": False}, headers=admin)
    assert off.status_code == 200
    assert (await client.get("/forms/spring-expo")).status_code == 404
    assert (await client.post("/forms/spring-expo", json={"phone": "1"})).status_code == 404
