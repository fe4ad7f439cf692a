"""Ticket pages in Chromium, with the real worker on the dev server: an agent replies (mailed
through a real SMTP sink), notes, uploads, waits on the customer and resolves; a supervisor's
stale button is refused with the workflow's reason, and the supervisor reassigns a ticket."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from domain.settings import Settings
from tests.conftest import wait_until
from tests.pages.conftest import SignIn, web_sign_in
from tests.sinks import SmtpSink
from tests.tickets import ServiceTeam, open_ticket, ticket_row, ticket_settled

pytestmark = pytest.mark.pages

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    """Replies to requesters go out through a real SMTP sink."""
    return settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp_sink.port})


@pytest.fixture
async def second_tab(browser: Browser, live: str) -> AsyncIterator[Page]:
    """The supervisor's own browser (no cookies shared with `page`)."""
    context = await browser.new_context(
        base_url=live, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(10_000)
    yield await context.new_page()
    await context.close()


async def test_an_agent_works_a_ticket_and_a_supervisor_reassigns_one(
    page: Page, second_tab: Page, sign_in: SignIn, worker: Worker, service_team: ServiceTeam,
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    admin: dict[str, str], smtp_sink: SmtpSink,
) -> None:
    agent1, agent2 = service_team.ids["agent1"], service_team.ids["agent2"]
    mine = await open_ticket(client, admin, requester_email="wang@example.cn",
                             requester_name="王女士", subject="打印机卡纸")
    await ticket_settled(sessions, mine["id"],  # round robin: one after the other
                         lambda r: r.assignee_id == agent1 and r.sla_due_at is not None)
    other = await open_ticket(client, admin, subject="路由器断线", priority="P2")
    await ticket_settled(sessions, other["id"],
                         lambda r: r.assignee_id == agent2 and r.sla_due_at is not None)

    await sign_in(page, "agent1")
    await page.get_by_role("navigation", name="主导航").get_by_role("link", name="工单").click()
    await expect(page.locator("h1")).to_contain_text("我的工单")
    rows = page.locator("table.tickets tbody tr")
    await expect(rows).to_have_count(1)  # agent2's ticket is in the queue, not in "mine"
    await expect(rows.locator(".sla")).to_contain_text("还剩")
    await expect(rows.locator(".sla-next")).to_have_text("首次响应")
    await rows.get_by_role("link", name="打印机卡纸").click()
    await expect(page.locator("#ticket-status")).to_have_text("已派单")
    await expect(page.locator("#sla .clock-running")).to_have_count(2)  # first response, resolution

    await page.get_by_label("回复内容").fill("请关机后取出卡住的纸张")
    await page.get_by_role("button", name="发送回复").click()
    await expect(page.locator(".flash")).to_have_text("回复已发送")
    await expect(page.locator("#ticket-status")).to_have_text("处理中")
    await expect(page.locator("#thread .comment")).to_contain_text("请关机后取出卡住的纸张")
    await expect(page.locator("#sla .clock-met")).to_contain_text("已于")

    def to_customer() -> list[str]:
        return [m.get_body(("plain",)).get_content() for m in smtp_sink.messages
                if "wang@example.cn" in m["To"]]

    async def mailed() -> bool:
        return any("请关机后取出卡住的纸张" in text for text in to_customer())

    await wait_until(mailed, seconds=30)

    await page.get_by_label("备注内容").fill("客户是老用户，优先处理")
    await page.get_by_role("button", name="添加备注").click()
    await expect(page.locator("#thread .comment.internal")).to_contain_text("优先处理")
    assert not any("优先处理" in text for text in to_customer())  # a note is never mailed

    await page.locator("#f-file").set_input_files(
        files=[{"name": "卡纸.png", "mimeType": "image/png", "buffer": PNG}])
    await page.get_by_role("button", name="上传", exact=True).click()
    await expect(page.locator("#attachments")).to_contain_text("卡纸.png")
    await expect(page.locator("#attachments")).to_contain_text("image/png")

    await page.get_by_role("button", name="等待客户").click()
    await expect(page.locator(".flash")).to_have_text("工单正在等待客户，时限已暂停")
    await expect(page.locator("#ticket-status")).to_have_text("等待客户")
    await expect(page.locator("#sla .clock-paused")).to_contain_text("暂停")
    assert (await ticket_row(sessions, mine["id"])).sla_paused

    # The supervisor opens the waiting ticket; the agent resolves it meanwhile.
    await sign_in(second_tab, "lead")
    await second_tab.goto(f"/tickets/{mine['id']}")
    await page.get_by_label("解决说明").fill("已取出卡纸，打印正常")
    await page.get_by_role("button", name="解决", exact=True).click()
    await expect(page.locator("#ticket-status")).to_have_text("已解决")
    await expect(page.get_by_role("button", name="重新打开")).to_be_visible()

    async with second_tab.expect_response(re.compile(r"/resolve$")) as answer:
        await second_tab.get_by_role("button", name="解决", exact=True).click()
    assert (await answer.value).status == 409
    await expect(second_tab.locator("#refusal")).to_have_text(
        "工单当前状态为「已解决」，不能解决")
    await expect(second_tab.locator("#ticket-status")).to_have_text("已解决")

    await second_tab.goto("/tickets")
    await expect(second_tab.locator("h1")).to_contain_text("团队工单队列")
    await expect(second_tab.locator("table.tickets tbody tr")).to_have_count(2)
    await second_tab.get_by_role("link", name="路由器断线").click()
    await second_tab.get_by_label("改派给").select_option(label="agent1")
    await second_tab.get_by_label("改派说明").fill("agent2 休假")
    await second_tab.get_by_role("button", name="改派", exact=True).click()
    await expect(second_tab.locator(".flash")).to_have_text("工单已改派")
    await expect(second_tab.locator("#ticket-assignee")).to_have_text("agent1")
    row = await ticket_row(sessions, other["id"])
    assert (row.assignee_id, row.dispatch_rule) == (agent1, "by hand")

    await page.goto("/tickets")
    await expect(page.locator("table.tickets tbody tr")).to_have_count(2)  # now also agent1's


async def test_ticket_forms_answer_by_field_and_the_profile_links_the_customer_tickets(
    web: httpx.AsyncClient, worker: Worker, service_team: ServiceTeam,
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession],
    admin: dict[str, str],
) -> None:
    made = await client.post("/api/customers", headers=admin, json={
        "kind": "person", "name": "钱女士", "phone": "13600136000"})
    assert made.status_code == 201, made.text
    ticket = await open_ticket(client, admin, subject="空调不制冷", customer_id=made.json()["id"])
    await ticket_settled(sessions, ticket["id"], lambda r: r.sla_due_at is not None)
    csrf = await web_sign_in(web, "agent1")
    shown = await web.get(f"/tickets/{ticket['id']}")
    assert shown.status_code == 200 and f'href="/customers/{made.json()["id"]}"' in shown.text
    assert 'id="reply-form"' in shown.text and 'id="reassign-form"' not in shown.text
    profile = await web.get(f"/customers/{made.json()['id']}")
    assert profile.status_code == 200
    assert f'<a href="/tickets/{ticket["id"]}">空调不制冷</a>' in profile.text

    empty = await web.post(f"/tickets/{ticket['id']}/reply",
                           data={"csrf_token": csrf, "body": "  "})
    assert empty.status_code == 422 and 'id="e-reply-body"' in empty.text
    bad_file = await web.post(f"/tickets/{ticket['id']}/attachments", data={"csrf_token": csrf},
                              files={"file": ("a.exe", b"MZ\x90\x00\x03\x00", "image/png")})
    assert bad_file.status_code == 422 and "e-file" in bad_file.text
    stale = await web.post(f"/tickets/{ticket['id']}/reply",
                           data={"csrf_token": "forged", "body": "你好"})
    assert stale.status_code == 403
    assert (await ticket_row(sessions, ticket["id"])).public_replies == 0

    web.cookies.clear()
    csrf2 = await web_sign_in(web, "agent2")  # same team: sees the ticket, may not work it
    other = await web.get(f"/tickets/{ticket['id']}")
    assert other.status_code == 200 and 'id="reply-form"' not in other.text
    refused = await web.post(f"/tickets/{ticket['id']}/start", data={"csrf_token": csrf2})
    assert refused.status_code == 403
    assert "只有工单处理人或其主管可以执行此操作" in refused.text
    assert (await ticket_row(sessions, ticket["id"])).status == "assigned"
