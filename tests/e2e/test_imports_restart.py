"""A real worker process killed in the middle of an import: after a restart the import resumes
after its last committed chunk, and every row is written exactly once."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from domain.audit import AuditLog
from domain.customer import Customer
from domain.imports import ImportRow
from domain.settings import Settings
from tests.e2e.test_worker_restart import WorkerProcess
from tests.imports import status_of, upload, xlsx

ROWS = 4_000


async def _count(sessions: async_sessionmaker[AsyncSession], query) -> int:
    async with sessions() as session:
        return await session.scalar(query) or 0


async def test_a_killed_worker_resumes_the_import_without_writing_a_row_twice(
    client: httpx.AsyncClient, admin: dict[str, str], settings: Settings,
    temporal_client: Client, sessions: async_sessionmaker[AsyncSession], tmp_path: Path,
) -> None:
    worker = WorkerProcess(settings, temporal_client.service_client.config.target_host,
                           tmp_path / "worker.log")
    worker.env["DOSSIER_IMPORT_CHUNK_ROWS"] = "20"
    rows = [["客户名称", "手机"]] + [[f"测试{i}号贸易有限公司", f"1380000{i:04d}"]
                                    for i in range(ROWS)]
    uploaded = await upload(client, admin, xlsx(rows))
    assert uploaded.status_code == 201, uploaded.text
    import_id = uploaded.json()["id"]
    worker.start()
    try:
        response = await client.post(f"/api/imports/{import_id}/check", json={"confirm": True},
                                     headers=admin)
        assert response.status_code == 202, response.text
        await status_of(client, admin, import_id, "importing", seconds=60)

        async def some_written() -> dict:
            return (await client.get(f"/api/imports/{import_id}", headers=admin)).json()

        state = await some_written()
        while state["done_rows"] < 200:
            state = await some_written()
        worker.kill()
        stopped = await some_written()
        assert 0 < stopped["done_rows"] < ROWS, stopped
        worker.start()
        done = await status_of(client, admin, import_id, "done", "failed", seconds=120)
    finally:
        worker.stop()
    assert done["status"] == "done" and done["created_count"] == ROWS, done
    assert await _count(sessions, select(func.count()).select_from(Customer)) == ROWS
    assert await _count(sessions, select(func.count(func.distinct(Customer.phone)))) == ROWS
    assert await _count(
        sessions, select(func.count()).select_from(ImportRow)
        .where(ImportRow.import_id == import_id)
    ) == ROWS
    assert await _count(
        sessions, select(func.count()).select_from(AuditLog)
        .where(AuditLog.entity == "customer", AuditLog.action == "create")
    ) == ROWS
