"""Policies over HTTP: versions on every publish, old versions readable, bad data named by field,
admins publish, managers read; and the service's defaults and calendar fallback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

import api.policy
from api.main import create_app
from domain import policy
from domain.access import SYSTEM, Role
from domain.assignment import AssignmentPolicy
from domain.audit import AuditLog
from domain.calendar import BusinessCalendar
from domain.db import transaction
from domain.errors import Conflict, Invalid
from domain.lead.rules import PoolPolicy
from domain.settings import Settings
from tests.conftest import Login, MakeUser


@pytest.fixture
async def app(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], temporal_client: Client
) -> AsyncIterator[FastAPI]:
    """The app with the policy router, whether or not api/main.py registers it yet."""
    application = create_app(settings, temporal=temporal_client)
    if not any(getattr(r, "path", "").startswith("/api/policies") for r in application.routes):
        application.include_router(api.policy.router)
    async with application.router.lifespan_context(application):
        yield application


RULES = {
    "rules": [
        {
            "name": "华南官网",
            "conditions": {"sources": ["官网"], "provinces": ["广东"]},
            "target": {"team_id": 1},
        }
    ],
    "default": {"name": "兜底", "target": {"user_id": 1}},
}


async def put(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    kind: str,
    data: Any,
    *,
    name: str | None = None,
) -> httpx.Response:
    params = {"name": name} if name else None
    return await client.put(f"/api/policies/{kind}", json=data, params=params, headers=headers)


async def test_publish_creates_version_1_with_the_normalised_data(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await put(client, admin, "assignment", RULES)
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["kind"], body["name"], body["version"]) == ("assignment", "default", 1)
    assert body["created_by"] is not None and body["created_at"]
    # Defaults are spelled out: what a workflow pins is exactly what it will run.
    rule = body["data"]["rules"][0]
    assert rule["strategy"] == "round_robin" and rule["weights"] == {}
    assert rule["conditions"]["cities"] == [] and rule["conditions"]["min_score"] is None
    assert rule["target"] == {"user_id": None, "team_id": 1}


async def test_publishing_again_makes_version_2_and_keeps_version_1_readable(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await put(client, admin, "pool", {"daily_claim_limit": 5})
    second = await put(client, admin, "pool", {"daily_claim_limit": 8, "cooldown": "P3D"})
    assert second.status_code == 201 and second.json()["version"] == 2

    current = (await client.get("/api/policies/pool", headers=admin)).json()
    old = (await client.get("/api/policies/pool/versions/1", headers=admin)).json()
    listed = (await client.get("/api/policies/pool/versions", headers=admin)).json()

    assert current["version"] == 2 and current["data"]["daily_claim_limit"] == 8
    assert current["data"]["cooldown"] == "P3D"
    assert old["version"] == 1 and old["data"]["daily_claim_limit"] == 5
    assert old["data"]["cooldown"] == "P7D"
    assert [v["version"] for v in listed] == [2, 1]


async def test_names_version_independently(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    north = await put(client, admin, "calendar", {"always_open": True}, name="北方")
    default = await put(client, admin, "calendar", {"use_cn_holidays": False})
    assert north.json()["version"] == 1 and north.json()["name"] == "北方"
    assert default.json()["version"] == 1 and default.json()["name"] == "default"


@pytest.mark.parametrize(
    ("kind", "data", "loc", "message"),
    [
        (
            "assignment",
            {"rules": [{"name": "a", "target": {"user_id": 1, "team_id": 2}}]},
            ["data", "rules", "0", "target"],
            "give exactly one of user_id or team_id",
        ),
        (
            "assignment",
            {"rules": [{"name": "a", "target": {"team_id": 1}, "strategy": "random"}]},
            ["data", "rules", "0", "strategy"],
            "round_robin",
        ),
        ("pool", {"daily_claim_limit": 0}, ["data", "daily_claim_limit"], "greater than or equal"),
        ("pool", {"claims": 3}, ["data", "claims"], "Extra inputs are not permitted"),
        (
            "calendar",
            {"timezone": "Mars/Olympus"},
            ["data", "timezone"],
            "unknown time zone 'Mars/Olympus'",
        ),
        ("lead", {"disqualify_reasons": []}, ["data", "disqualify_reasons"], "at least 1 item"),
        (
            "lead_sla",
            {"cadence": "PT0S"},
            ["data", "cadence"],
            "greater than 0 seconds",
        ),
        ("pool", {"cooldown": "P1D\x00"}, ["data", "cooldown"], "NUL"),
    ],
)
async def test_invalid_data_is_422_naming_the_field_and_stores_nothing(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    kind: str,
    data: dict,
    loc: list[str],
    message: str,
) -> None:
    response = await put(client, admin, kind, data)
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert error["loc"] == loc
    assert message in error["msg"]
    listed = await client.get(f"/api/policies/{kind}/versions", headers=admin)
    assert listed.json() == []


async def test_body_that_is_not_an_object_is_422(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await put(client, admin, "pool", [1, 2])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


async def test_unknown_kind_is_422_naming_kind(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    for response in (
        await client.get("/api/policies/pricing", headers=admin),
        await put(client, admin, "pricing", {}),
    ):
        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["path", "kind"]


@pytest.mark.parametrize("role", [Role.sales_manager, Role.sales, Role.service_manager])
async def test_only_admins_publish(
    client: httpx.AsyncClient, make_user: MakeUser, login: Login, role: Role
) -> None:
    await make_user("someone", role)
    response = await put(client, await login("someone"), "pool", {"daily_claim_limit": 99})
    assert response.status_code == 403


async def test_managers_read_and_reps_do_not(
    client: httpx.AsyncClient, admin: dict[str, str], make_user: MakeUser, login: Login
) -> None:
    await put(client, admin, "assignment", RULES)
    await make_user("boss", Role.sales_manager)
    await make_user("rep", Role.sales)
    boss, rep = await login("boss"), await login("rep")
    for path in ("", "/versions", "/versions/1"):
        assert (
            await client.get(f"/api/policies/assignment{path}", headers=boss)
        ).status_code == 200
        assert (await client.get(f"/api/policies/assignment{path}", headers=rep)).status_code == 403
    assert (await client.get("/api/policies/assignment")).status_code == 401


@pytest.mark.parametrize("kind", ["assignment", "lead_sla", "pool", "lead", "calendar"])
async def test_unpublished_kind_reads_as_version_0_with_defaults(
    client: httpx.AsyncClient, admin: dict[str, str], kind: str
) -> None:
    response = await client.get(f"/api/policies/{kind}", headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 0 and body["id"] is None and body["name"] == "default"
    assert body["data"] == policy.model_for(kind)().model_dump(mode="json")


async def test_missing_version_is_404_naming_version(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.get("/api/policies/pool/versions/3", headers=admin)
    assert response.status_code == 404
    assert response.json()["detail"][0]["loc"] == ["version"]


async def test_defaults_published_back_reproduce_the_same_policy(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """What GET shows can be edited and PUT back as is, for every kind."""
    for kind in ("assignment", "lead_sla", "pool", "lead", "calendar"):
        shown = (await client.get(f"/api/policies/{kind}", headers=admin)).json()["data"]
        published = await put(client, admin, kind, shown)
        assert published.status_code == 201, published.text
        assert published.json()["data"] == shown


async def test_calendar_of_a_team_falls_back_to_default(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    await put(client, admin, "calendar", {"always_open": True})
    shown = (await client.get("/api/policies/calendar?name=华东", headers=admin)).json()
    assert shown["name"] == "default" and shown["version"] == 1
    assert shown["data"]["always_open"] is True


# --- the service, as workflows and activities use it --------------------------------------------


async def test_current_is_version_0_defaults_then_the_newest(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        assert await policy.current(session, kind=policy.PolicyKind.pool) == (0, PoolPolicy())
        await policy.publish(session, actor=SYSTEM, kind="pool", data={"open_lead_cap": 5})
        await policy.publish(session, actor=SYSTEM, kind="pool", data={"open_lead_cap": 7})
        version, model = await policy.current(session, kind="pool")
        pinned = await policy.at_version(session, kind="pool", version=1)
        defaults = await policy.at_version(session, kind="pool", version=0)
    assert version == 2 and model == PoolPolicy(open_lead_cap=7)
    assert pinned == PoolPolicy(open_lead_cap=5) and defaults == PoolPolicy()


async def test_current_assignment_policy_parses_back_to_the_model(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        await policy.publish(session, actor=SYSTEM, kind="assignment", data=RULES)
        version, model = await policy.current(session, kind="assignment")
    assert version == 1 and model == AssignmentPolicy.model_validate(RULES)


async def test_calendar_falls_back_to_default_then_to_the_model_default(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        none_yet = await policy.current(session, kind="calendar", name="华南")
        await policy.publish(session, actor=SYSTEM, kind="calendar", data={"always_open": True})
        fallback = await policy.current(session, kind="calendar", name="华南")
        await policy.publish(
            session, actor=SYSTEM, kind="calendar", name="华南", data={"use_cn_holidays": False}
        )
        own = await policy.current(session, kind="calendar", name="华南")
    assert none_yet == (0, BusinessCalendar())
    assert fallback == (1, BusinessCalendar(always_open=True))
    assert own == (1, BusinessCalendar(use_cn_holidays=False))


async def test_publish_is_audited(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        row = await policy.publish(session, actor=SYSTEM, kind="lead", data={})
    async with sessions() as session:
        entry = await session.scalar(select(AuditLog).where(AuditLog.entity == "policy"))
    assert entry is not None and entry.entity_id == row.id and entry.action == "publish"
    assert entry.changes == {
        "kind": [None, "lead"],
        "name": [None, "default"],
        "version": [None, 1],
    }


async def test_a_version_taken_meanwhile_is_a_conflict(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Two publishers read the same previous version; the second insert loses with a 409."""
    async with transaction(sessions) as session:
        await policy.publish(session, actor=SYSTEM, kind="pool", data={})
    async with sessions() as session:
        session.add(policy.Policy(kind="pool", name="default", version=2, data={}))
        await session.flush()
        # Simulate the other publisher having read version 1 just before ours was added.
        real_scalar = session.scalar

        async def stale_scalar(statement: Any, *args: Any, **kwargs: Any) -> Any:
            if "max" in str(statement):
                return 1
            return await real_scalar(statement, *args, **kwargs)

        session.scalar = stale_scalar  # type: ignore[method-assign]
        with pytest.raises(Conflict, match="someone published at the same time"):
            await policy.publish(session, actor=SYSTEM, kind="pool", data={})
        await session.rollback()


async def test_bad_name_is_invalid(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        with pytest.raises(Invalid) as caught:
            await policy.publish(session, actor=SYSTEM, kind="pool", name="x" * 61, data={})
    assert caught.value.field == "name"
