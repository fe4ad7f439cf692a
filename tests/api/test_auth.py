"""Sign-in: bearer tokens, page cookies, API keys; every endpoint but health needs one."""

from __future__ import annotations

import re

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from domain.access import Role
from domain.audit import AuditLog
from tests.conftest import PASSWORD, Login, MakeUser


async def test_password_flow_gives_a_token_that_identifies_the_user(
    client: httpx.AsyncClient, make_user: MakeUser, login: Login
) -> None:
    await make_user("mei", Role.sales)
    headers = await login("mei")
    me = await client.get("/api/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["username"] == "mei"
    assert me.json()["role"] == "sales"


async def test_wrong_password_is_401_naming_the_password(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("mei")
    response = await client.post("/api/auth/token", data={"username": "mei", "password": "nope"})
    assert response.status_code == 401
    assert response.json()["detail"][0]["loc"] == ["password"]


async def test_unknown_user_is_refused_like_a_wrong_password(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/token", data={"username": "ghost", "password": "x"})
    assert response.status_code == 401


async def test_every_route_but_health_and_sign_in_needs_a_caller(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    open_paths = {
        "/api/health",
        "/api/auth/token",
        "/forms/{slug}",  # public lead forms
        "/support",  # the public support form
        "/api/approval-links/{token}",  # the signed link is the approver's authority
        "/api/surveys/{token}",  # the signed link is the customer's
    }
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if path in open_paths:
            continue
        url = re.sub(r"\{[^}]+\}", "1", path)
        for method in operations:
            response = await client.request(method.upper(), url)
            assert response.status_code == 401, (method, path, response.status_code)
            checked += 1
    assert checked > 20


async def test_deactivated_user_loses_access_at_once(
    client: httpx.AsyncClient, make_user: MakeUser, login: Login, admin: dict[str, str]
) -> None:
    mei = await make_user("mei")
    headers = await login("mei")
    assert (await client.patch(f"/api/users/{mei.id}", json={"active": False},
                               headers=admin)).status_code == 200
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401


async def test_changing_a_password_ends_earlier_sessions(
    client: httpx.AsyncClient, make_user: MakeUser, login: Login, admin: dict[str, str]
) -> None:
    mei = await make_user("mei")
    headers = await login("mei")
    await client.patch(f"/api/users/{mei.id}", json={"password": "another-secret-1"},
                       headers=admin)
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 401


async def test_sign_in_is_audited(
    client: httpx.AsyncClient, make_user: MakeUser, login: Login, sessions
) -> None:
    mei = await make_user("mei")
    await login("mei")
    async with sessions() as session:
        entry = await session.scalar(select(AuditLog).where(AuditLog.action == "sign_in"))
    assert entry is not None
    assert (entry.actor_id, entry.entity, entry.entity_id, entry.source) == (
        mei.id, "user", mei.id, "api")


async def test_api_key_is_scoped_hashed_and_revocable(
    client: httpx.AsyncClient, admin: dict[str, str], sessions
) -> None:
    issued = await client.post("/api/api-keys", json={"name": "web", "scopes": ["customers:read"]},
                               headers=admin)
    assert issued.status_code == 201
    key = issued.json()["key"]
    from domain.api_key import ApiKey

    async with sessions() as session:
        stored = await session.scalar(select(ApiKey))
    assert key not in (stored.key_hash, stored.hint) and stored.hint == key[-4:]

    as_key = {"X-API-Key": key}
    assert (await client.get("/api/customers", headers=as_key)).status_code == 200
    created = await client.post("/api/customers", json={"kind": "person", "name": "林晓"},
                                headers=as_key)
    assert created.status_code == 403
    assert "customers:write" in created.json()["detail"][0]["msg"]

    assert (await client.delete(f"/api/api-keys/{issued.json()['id']}",
                                headers=admin)).status_code == 200
    assert (await client.get("/api/customers", headers=as_key)).status_code == 401


@pytest.mark.parametrize("header", ["Bearer not-a-token", "Bearer dsk_forged", "Basic abc"])
async def test_forged_credentials_are_401(client: httpx.AsyncClient, header: str) -> None:
    response = await client.get("/api/customers", headers={"Authorization": header})
    assert response.status_code == 401


async def test_password_is_stored_as_argon2(make_user: MakeUser) -> None:
    mei = await make_user("mei")
    assert mei.password_hash.startswith("$argon2id$")
    assert PASSWORD not in mei.password_hash
