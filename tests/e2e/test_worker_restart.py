"""A real worker process killed between two SLA steps: after a restart each step still fires,
and exactly once — one mail in the SMTP sink, one delivery and one breach in the database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from domain.notification import Delivery
from domain.policy import PolicyKind
from domain.settings import Settings
from tests.conftest import wait_until
from tests.leads import SalesTeam, capture, publish, settled
from tests.sinks import SmtpSink


class WorkerProcess:
    """`dossier worker` as its own process, on the test's database and task queue."""

    def __init__(self, settings: Settings, temporal_address: str, log: Path) -> None:
        self.env = {
            **os.environ,
            "DOSSIER_DATABASE_URL": settings.database_url,
            "DOSSIER_TEMPORAL_ADDRESS": temporal_address,
            "DOSSIER_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
            "DOSSIER_TEMPORAL_ID_PREFIX": settings.temporal_id_prefix,
            "DOSSIER_SMTP_HOST": settings.smtp_host or "",
            "DOSSIER_SMTP_PORT": str(settings.smtp_port),
            "DOSSIER_VAR_DIR": str(settings.var_dir),
        }
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("a") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "worker"], env=self.env, stdout=out, stderr=out
            )

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, as when a machine dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@pytest.fixture
def worker_process(
    settings: Settings, smtp_sink: SmtpSink, temporal_client: Client, tmp_path: Path
) -> Iterator[WorkerProcess]:
    settings.smtp_host, settings.smtp_port = "127.0.0.1", smtp_sink.port
    process = WorkerProcess(
        settings, temporal_client.service_client.config.target_host, tmp_path / "worker.log"
    )
    yield process
    process.stop()


async def _timers(client: Client, workflow_id: str, kind: EventType.ValueType, count: int) -> bool:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(e.event_type == kind for e in history.events) >= count


async def test_steps_fire_exactly_once_across_a_killed_worker(
    worker_process: WorkerProcess,
    smtp_sink: SmtpSink,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    temporal_client: Client,
    team: SalesTeam,
    admin: dict[str, str],
) -> None:
    await publish(
        sessions,
        PolicyKind.lead_sla,
        {
            "default_chain": {
                "name": "live",
                "business_hours": False,
                "steps": [
                    {"after": "PT2S", "action": "notify_owner"},
                    {"after": "PT5S", "action": "notify_manager"},
                ],
            }
        },
    )
    worker_process.start()
    lead = (await capture(client, admin, company="杭州青禾食品有限公司", phone="13800138000"))[
        "lead"
    ]
    workflow_id = settings.workflow_id("lead", lead["id"])

    started, fired = EventType.EVENT_TYPE_TIMER_STARTED, EventType.EVENT_TYPE_TIMER_FIRED
    await wait_until(lambda: _timers(temporal_client, workflow_id, started, 2), seconds=30)
    worker_process.kill()  # step 1 done, step 2's timer running on the server
    await wait_until(lambda: _timers(temporal_client, workflow_id, fired, 2), seconds=30)
    worker_process.start()  # step 2 came due while no worker was alive
    await settled(sessions, lead["id"], lambda r: len(r.sla_breaches) == 2)

    messages = await smtp_sink.wait_for(3, timeout=30)
    subjects = sorted(m["To"] + " " + m["Subject"] for m in messages)
    assert len(messages) == 3, subjects  # assigned + reminder to rep1, escalation to boss
    assert sum("boss@" in s for s in subjects) == 1
    assert sum("rep1@" in s for s in subjects) == 2

    async def mail_rows() -> list:
        async with sessions() as session:
            query = select(Delivery.key, Delivery.status).where(Delivery.channel == "email")
            return list((await session.execute(query)).all())

    async def all_sent() -> bool:  # the sink has a mail a moment before its row says so
        return {status for _, status in await mail_rows()} == {"sent"}

    await wait_until(all_sent)
    rows = await mail_rows()
    assert len(rows) == len({key for key, _ in rows}) == 3
    final = await settled(sessions, lead["id"], lambda r: True)
    assert final.sla_breaches == ["1.0.notify_owner", "1.1.notify_manager"]
