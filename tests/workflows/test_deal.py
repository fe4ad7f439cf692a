"""The deal lifecycle on the time-skipping server: stagnation alerts at exact instants."""

from __future__ import annotations

from datetime import time, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.policy import PolicyKind
from domain.settings import Settings
from tests.conftest import wait_until
from tests.deals import Org, make_customer, tasks_of
from tests.histories import record_history
from tests.leads import fired_timers, next_weekday, publish, travel_to
from tests.workflows.test_lead import assert_instants

PIPELINE = {
    "stages": [
        {"key": "initial_contact", "name": "初步接触", "name_en": "Initial contact",
         "probability": 10, "max_duration": "PT48H"},
        {"key": "needs_confirmed", "name": "需求确认", "name_en": "Needs confirmed",
         "probability": 30, "max_duration": "PT24H", "entry_tasks": ["预约演示"]},
        {"key": "won", "name": "签约", "name_en": "Won", "probability": 100, "outcome": "won"},
        {"key": "lost", "name": "输单", "name_en": "Lost", "probability": 0, "outcome": "lost"},
    ],
    "escalate_after": "PT24H",
}


async def test_a_stalled_deal_alerts_its_owner_then_the_manager_and_a_move_restarts_the_clock(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, org: Org,
) -> None:
    await publish(sessions, PolicyKind.pipeline, PIPELINE)
    start = await next_weekday(temporal_env, 1, time(9, 30))
    await travel_to(temporal_env, start)
    customer_id = await make_customer(client, org.headers["rep"], "苏州恒远精密机械有限公司")
    created = await client.post("/api/deals", headers=org.headers["rep"], json={
        "name": "恒远 · 冷库改造", "customer_id": customer_id, "amount": "360000"})
    assert created.status_code == 201, created.text
    deal = created.json()
    handle = temporal_env.client.get_workflow_handle(settings.workflow_id("deal", deal["id"]))

    await temporal_env.sleep(timedelta(hours=80))

    assert_instants(await fired_timers(handle), [start + timedelta(hours=48),
                                                 start + timedelta(hours=72)])
    assert await tasks_of(sessions, "deal.stagnant") == [(org.ids["rep"], "open")]
    assert await tasks_of(sessions, "deal.stagnant_manager") == [(org.ids["boss"], "open")]

    moved_at = await temporal_env.get_current_time()
    moved = await client.post(f"/api/deals/{deal['id']}/stage", headers=org.headers["rep"],
                              json={"stage": "needs_confirmed"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["stage"], moved.json()["probability"]) == ("needs_confirmed", 30)
    assert await tasks_of(sessions, "deal.stage_task") == [(org.ids["rep"], "open")]

    await temporal_env.sleep(timedelta(hours=30))

    async def alerted_again() -> bool:
        return len(await tasks_of(sessions, "deal.stagnant")) == 2

    await wait_until(alerted_again)
    timers = await fired_timers(handle)
    assert_instants(timers[2:], [moved_at + timedelta(hours=24)])
    assert len(await tasks_of(sessions, "deal.stagnant_manager")) == 1
    await record_history(handle, "deal_stagnant_moved")
