"""Health tells which dependency is down, and the API still answers when Temporal is away."""

from __future__ import annotations

import socket

import httpx

from api.main import create_app
from domain.settings import Settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_temporal_down_is_reported_and_writes_that_need_it_change_nothing(
    settings: Settings, make_user, sessions
) -> None:
    from tests.conftest import PASSWORD

    await make_user("rep1")
    config = settings.model_copy(update={"temporal_address": f"127.0.0.1:{_closed_port()}"})
    app = create_app(config)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://dossier.test"
    ) as client:
        health = await client.get("/api/health")
        assert health.status_code == 503
        assert health.json() == {"status": "degraded", "database": "up", "temporal": "down"}

        token = (await client.post("/api/auth/token", data={"username": "rep1",
                                                            "password": PASSWORD})).json()
        headers = {"Authorization": f"Bearer {token['access_token']}"}
        created = await client.post("/api/customers", json={"kind": "person", "name": "甲"},
                                    headers=headers)
        assert created.status_code == 201, "plain record writes do not need Temporal"
        url = f"/api/customers/{created.json()['id']}/follow-ups"
        refused = await client.post(url, headers=headers, json={
            "kind": "call", "summary": "x", "next_contact_at": "2099-01-01T09:00:00+08:00"})
        assert refused.status_code == 503
        assert (await client.get(url, headers=headers)).json() == []
