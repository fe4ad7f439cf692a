"""The imports page in a real browser: upload, adjust and save the column mapping, read the dry
run report, confirm, watch the progress bar move, cancel, download the error report — against
the real worker on the Temporal dev server."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import psycopg
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import func, make_url, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from domain.access import Role
from domain.customer import Customer
from domain.imports import ImportMapping
from domain.settings import Settings
from tests.conftest import MakeUser, wait_until
from tests.imports import xlsx
from tests.pages.conftest import SignIn

pytestmark = pytest.mark.pages


async def _customers(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return await session.scalar(select(func.count()).select_from(Customer)) or 0


async def _customers_written(sessions: async_sessionmaker[AsyncSession]) -> bool:
    return await _customers(sessions) > 0


@contextlib.asynccontextmanager
async def _writes_held(database_url: str) -> AsyncIterator[None]:
    """Hold the lock an import's chunk needs (SQLite's write lock, PostgreSQL's customers
    table) so the write waits at a chunk: the test, not the machine's speed, decides where the
    import is when the user cancels."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        holder = sqlite3.connect(url.database or "", timeout=30, isolation_level=None,
                                 check_same_thread=False)
        await asyncio.to_thread(holder.execute, "BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.rollback()
            holder.close()
        return
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    async with await psycopg.AsyncConnection.connect(dsn) as locker:
        await locker.execute("LOCK TABLE customers IN SHARE MODE")  # reads go on
        yield
        await locker.rollback()


async def _cancel_requested(workflow: WorkflowHandle) -> bool:
    """The workflow asked its write activity to stop: the request is on the server."""
    async for event in workflow.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
            return True
    return False


async def _upload(page: Page, path: Path, entity: str = "客户") -> None:
    await page.goto("/imports")
    await page.set_input_files("#f-file", str(path))
    await page.select_option("#f-entity", label=entity)
    await page.get_by_role("button", name="上传并识别列").click()
    await page.wait_for_url(re.compile(r"/imports/\d+$"))


async def test_upload_map_check_confirm_and_download_the_error_report(
    worker: Worker, page: Page, sign_in: SignIn, make_user: MakeUser, tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await make_user("root", Role.admin)
    await sign_in(page, "root")
    await page.get_by_role("link", name="导入").click()
    await expect(page.get_by_role("heading", name="导入", exact=True)).to_be_visible()

    source = tmp_path / "客户名单.xlsx"
    source.write_bytes(xlsx([["公司", "座机号", "邮箱"],
                             ["杭州青禾食品有限公司", "0571-88886666", "info@qinghe.cn"],
                             ["宁波海岳贸易有限公司", "12345", "not-an-email"]]))
    await _upload(page, source)
    await expect(page.locator("#f-map-0")).to_have_value("name")
    await expect(page.locator("#f-map-1")).to_have_value("")  # 座机号 is not recognised
    await page.select_option("#f-map-1", value="phone")
    await page.get_by_label("保存列对应为").fill("旧系统")
    await page.get_by_label("只补充空白字段").check()
    await page.get_by_role("button", name="检查（试导入）").click()

    await expect(page.locator("#import-status")).to_have_text("待确认", timeout=30_000)
    await expect(page.locator("#count-new")).to_have_text("1")
    await expect(page.locator("#count-invalid")).to_have_text("1")
    problems = page.locator("#problems tbody tr")
    await expect(problems).to_have_count(2)
    await expect(problems.first).to_contain_text("3")
    await expect(problems.first).to_contain_text("座机号")
    await expect(problems.first).to_contain_text("12345")
    assert await _customers(sessions) == 0  # the dry run wrote nothing

    await page.get_by_role("button", name="确认导入").click()
    await expect(page.locator("#import-status")).to_have_text("已完成", timeout=30_000)
    await expect(page.locator("#count-created")).to_have_text("1")
    await expect(page.locator("#count-errors")).to_have_text("1")
    assert await _customers(sessions) == 1
    async with page.expect_download() as download:
        await page.get_by_role("link", name="下载错误报告").click()
    assert re.fullmatch(r"import-\d+-errors\.xlsx", (await download.value).suggested_filename)

    async with sessions() as session:
        saved = await session.scalar(select(ImportMapping))
    assert saved is not None and saved.mapping == {"公司": "name", "座机号": "phone",
                                                   "邮箱": "email"}
    await page.goto("/imports")  # the saved mapping is offered by name for the next file
    await page.set_input_files("#f-file", str(source))
    await page.select_option("#f-mapping_name", label="旧系统")
    await page.get_by_role("button", name="上传并识别列").click()
    await expect(page.locator("#f-map-1")).to_have_value("phone")

    await page.context.add_cookies([{"name": "lang", "value": "en",
                                     "url": page.url.split("/imports")[0]}])
    await page.goto("/imports")
    await expect(page.get_by_role("heading", name="Imports", exact=True)).to_be_visible()
    await expect(page.get_by_role("link", name="Past purchases")).to_be_visible()


async def test_the_progress_bar_moves_and_cancel_stops_the_import(
    worker: Worker, page: Page, sign_in: SignIn, make_user: MakeUser, tmp_path: Path,
    settings: Settings, sessions: async_sessionmaker[AsyncSession], temporal_client: Client,
) -> None:
    settings.import_chunk_rows = 50  # many small chunks, so the bar has steps to show
    await make_user("root", Role.admin)
    await sign_in(page, "root")
    rows = 12_000
    source = tmp_path / "big.xlsx"
    source.write_bytes(xlsx([["客户名称", "手机"]] + [[f"测试{i}号贸易有限公司", f"138{i:08d}"]
                                                     for i in range(rows)]))
    await _upload(page, source)
    import_id = int(page.url.rsplit("/", 1)[1])
    await page.get_by_role("button", name="检查（试导入）").click()
    await expect(page.locator("#import-status")).to_have_text("待确认", timeout=60_000)
    await page.get_by_role("button", name="确认导入").click()

    bar = page.locator("#progress-bar")
    await expect(bar).to_be_visible()
    await wait_until(lambda: _customers_written(sessions), seconds=60)
    async with _writes_held(settings.database_url):  # the write stops mid-way until released
        await page.wait_for_function(  # updated in place by the script, no reload
            "() => { const b = document.getElementById('progress-bar');"
            " return b && b.value > 0 && b.value < b.max; }", timeout=60_000)
        await expect(page.locator("#progress-text")).to_contain_text(f"/ {rows} 行")
        await page.get_by_role("button", name="取消导入").click()
        workflow = temporal_client.get_workflow_handle(settings.workflow_id("import", import_id))
        await wait_until(lambda: _cancel_requested(workflow))
    await expect(page.locator("#import-status")).to_have_text("已取消", timeout=60_000)
    written = await _customers(sessions)
    assert 0 < written < rows
    await expect(page.locator("#count-created")).to_have_text(str(written))
