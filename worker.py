"""The Temporal worker: every workflow and activity of Dossier, on one task queue."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

import domain.tables  # noqa: F401 - every table, so each mapper's foreign keys resolve
from activities import all_activities
from domain.db import create_engine, session_factory
from domain.settings import Settings, settings
from workflows import ALL_WORKFLOWS
from workflows.client import connect

log = logging.getLogger("dossier.worker")
HEARTBEAT_EVERY = timedelta(seconds=1)


def build_worker(
    client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> Worker:
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=ALL_WORKFLOWS,
        activities=all_activities(sessions, settings),
        graceful_shutdown_timeout=timedelta(seconds=10),
        # A cancellation reaches an activity only with a heartbeat's answer; by default they
        # are sent every 0.8 heartbeat timeouts (8 s for an import), too slow for a user who
        # pressed "cancel" and watches the progress bar.
        max_heartbeat_throttle_interval=HEARTBEAT_EVERY,
    )


async def run(config: Settings = settings) -> None:
    """Run until SIGINT/SIGTERM, then let running activities finish before exiting."""
    engine = create_engine(config.database_url)
    client = await connect(config)
    worker = build_worker(client, session_factory(engine), config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker on %s, task queue %s", config.temporal_target, config.temporal_task_queue)
    async with worker:
        await stop.wait()
    await engine.dispose()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(run())


if __name__ == "__main__":
    main()
