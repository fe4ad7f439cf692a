"""A real API, database and worker on the dev server: a promised next contact becomes a task."""

from __future__ import annotations

from datetime import timedelta

import httpx
from temporalio.worker import Worker

from domain.access import Role
from domain.db import utcnow
from tests.conftest import Login, MakeUser, wait_until


async def test_next_contact_date_puts_a_task_in_the_owners_inbox(
    client: httpx.AsyncClient, worker: Worker, make_user: MakeUser, login: Login
) -> None:
    await make_user("rep1", Role.sales)
    rep = await login("rep1")
    created = await client.post("/api/customers", json={"kind": "person", "name": "林晓"},
                                headers=rep)
    customer_id = created.json()["id"]
    due = utcnow() + timedelta(seconds=2)
    logged = await client.post(
        f"/api/customers/{customer_id}/follow-ups", headers=rep,
        json={"kind": "call", "summary": "报价已发", "next_step": "确认报价",
              "next_contact_at": due.isoformat()},
    )
    assert logged.status_code == 201, logged.text
    assert logged.json()["reminder"] == "scheduled"

    async def task_arrived() -> bool:
        inbox = (await client.get("/api/tasks", headers=rep)).json()
        return inbox["total"] == 1

    await wait_until(task_arrived, seconds=30)
    inbox = (await client.get("/api/tasks", headers=rep)).json()["items"]
    assert inbox[0]["kind"] == "follow_up.next_contact"
    assert inbox[0]["customer_id"] == customer_id
    assert "确认报价" in inbox[0]["title"]
    assert utcnow() >= due
    follow_ups = (await client.get(f"/api/customers/{customer_id}/follow-ups",
                                   headers=rep)).json()
    assert follow_ups[0]["reminder"] == "sent"


async def test_health_reports_database_and_temporal_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up", "temporal": "up"}
