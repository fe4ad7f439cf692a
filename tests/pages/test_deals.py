"""Deal, contract-approval and link pages: from a new deal to a signed contract, in Chromium.

The real worker runs on the Temporal dev server, so a stage move, an inbox answer and a
one-click link answer go through the same workflows as the API. Approvers get their own
browser contexts; the link page is opened signed out, as from a mail.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from domain.approval import ApprovalDecision, link_token
from domain.contract.models import Contract
from domain.db import transaction
from domain.order.models import Order
from domain.settings import Settings
from domain.task import Task
from domain.user import User
from tests.conftest import wait_until
from tests.deals import Org, accept_quote, approvals, contract_row, make_customer, pending_for
from tests.pages.conftest import SignIn, web_sign_in

pytestmark = pytest.mark.pages


@pytest.fixture
async def second_tab(browser: Browser, live: str) -> AsyncIterator[Page]:
    """Another person's browser (no cookies shared with `page`)."""
    context = await browser.new_context(
        base_url=live, locale="zh-CN", timezone_id="Asia/Shanghai"
    )
    context.set_default_timeout(10_000)
    yield await context.new_page()
    await context.close()


def _link(settings: Settings, approval_id: int, user_id: int, *, key: str | None = None,
          expires_in: timedelta = timedelta(days=1)) -> str:
    return "/approvals/link/" + link_token(
        key or settings.signing_key(),
        approval_id=approval_id,
        user_id=user_id,
        decision=ApprovalDecision.approve,
        expires_at=datetime.now(UTC) + expires_in,
    )


async def _move(page: Page, stage: str) -> None:
    await page.locator("#move-form").get_by_label("目标阶段").select_option(label=stage)
    await page.get_by_role("button", name="推进", exact=True).click()


async def test_a_deal_goes_from_first_contact_to_a_signed_contract(
    page: Page,
    second_tab: Page,
    browser: Browser,
    live: str,
    sign_in: SignIn,
    worker: Worker,
    org: Org,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    rep = org.headers["rep"]
    customer_id = await make_customer(client, rep, "杭州东岳环保设备有限公司")
    contact = await client.post(f"/api/customers/{customer_id}/contacts", headers=rep,
                                json={"name": "周总", "mobile": "13900139000"})
    assert contact.status_code == 201, contact.text

    await sign_in(page, "rep")
    await page.goto(f"/customers/{customer_id}")
    await page.locator("#business").get_by_role("link", name="新建商机").click()
    await expect(page).to_have_url(re.compile(rf"/deals/new\?customer_id={customer_id}$"))
    await page.get_by_label("商机名称").fill("东岳 · 除尘设备")
    await page.get_by_label("金额", exact=True).fill("180000")
    await page.get_by_role("button", name="创建商机").click()
    await expect(page).to_have_url(re.compile(r"/deals/\d+$"))
    await expect(page.get_by_role("status")).to_have_text("商机已创建")
    deal_id = int(page.url.rsplit("/", 1)[1])
    current = page.locator("#stage-bar [aria-current=step]")
    await expect(current).to_contain_text("初步接触")

    await _move(page, "需求确认")
    await expect(page.get_by_role("status")).to_have_text("商机已推进")
    await expect(current).to_contain_text("需求确认")

    await _move(page, "方案提供")
    await expect(page.locator("#move-refusal")).to_have_text(
        "进入「方案提供」前请先填写：预算、决策人")
    await expect(current).to_contain_text("需求确认")

    edit = page.locator("#deal-edit")
    await edit.get_by_label("预算").fill("200000")
    await edit.get_by_label("决策人").select_option(label="周总")
    await edit.get_by_role("button", name="保存").click()
    await expect(page.get_by_role("status")).to_have_text("商机已保存")
    await expect(page.locator("#deal-facts")).to_contain_text("¥200,000.00")
    await _move(page, "方案提供")
    await expect(page.get_by_role("status")).to_have_text("商机已推进")
    await expect(current).to_contain_text("方案提供")

    await accept_quote(sessions, deal_id=deal_id, total="180000.00")
    await page.reload()
    await expect(page.locator("#quotes")).to_contain_text("客户已接受")
    await _move(page, "商务谈判")
    await expect(current).to_contain_text("商务谈判")
    contract_link = page.locator("#contracts").get_by_role("link", name=re.compile(r"^HT-"))
    await expect(contract_link).to_have_count(1)
    await contract_link.click()
    await expect(page).to_have_url(re.compile(r"/contracts/\d+$"))
    contract_id = int(page.url.rsplit("/", 1)[1])
    asked = {a.assignee_id: a for a in await pending_for(sessions, contract_id, 2)}
    legal, finance = asked[org.ids["legal"]], asked[org.ids["finance"]]

    # Legal answers from the inbox, with a comment.
    await sign_in(second_tab, "legal")
    await second_tab.goto("/tasks")
    task = second_tab.locator(".task", has=second_tab.locator(f"#decide-{legal.task_id}"))
    await expect(task.get_by_role("link", name="查看合同")).to_have_attribute(
        "href", f"/contracts/{contract_id}")
    await task.get_by_label("审批意见").fill("条款无误")
    await task.get_by_role("button", name="批准").click()
    await expect(second_tab.get_by_role("status")).to_have_text("已批准")
    await expect(second_tab.locator(f"#decide-{legal.task_id}")).to_have_count(0)

    # Finance clicks the mail's link: the GET only asks, the POST answers, once.
    link = _link(settings, finance.id, org.ids["finance"])
    mail_reader = await browser.new_context(base_url=live, locale="zh-CN")
    tab = await mail_reader.new_page()
    shown = await tab.goto(link)
    assert shown is not None and shown.status == 200
    await expect(tab.get_by_role("heading", level=1)).to_have_text("确认批准？")
    await expect(tab.locator("#link-subject")).to_contain_text("杭州东岳环保设备有限公司")
    await expect(tab.locator("#link-subject")).to_contain_text("¥180,000.00")
    still = {a.id: a.status for a in await approvals(sessions, contract_id)}
    assert still[finance.id] == "pending"  # looking changed nothing
    no_token = await client.post(link)
    assert no_token.status_code == 403 and "表单已过期" in no_token.text
    await tab.get_by_role("button", name="确认批准").click()
    await expect(tab.locator("#link-done")).to_have_text("您已批准")
    await expect(tab.locator("#link-outcome")).to_contain_text("已全部批准")
    again = await tab.goto(link)
    assert again is not None and again.status == 409
    await expect(tab.get_by_role("heading", level=1)).to_have_text("链接已使用")
    await mail_reader.close()

    async def signed() -> bool:
        return (await contract_row(sessions, contract_id)).status == "signed"

    await wait_until(signed)
    await page.reload()
    await expect(page.locator("#contract-status")).to_have_text("已签署")
    rows = page.locator("#trail tbody tr")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("legal")
    await expect(rows.nth(0)).to_contain_text("已批准")
    await expect(rows.nth(0)).to_contain_text("条款无误")
    await expect(rows.nth(0)).to_contain_text("待办")
    await expect(rows.nth(1)).to_contain_text("finance")
    await expect(rows.nth(1)).to_contain_text("邮件链接")
    await expect(page.locator("#submit-form")).to_have_count(0)  # signed: no more edits

    async def ordered() -> bool:
        async with sessions() as session:
            return await session.scalar(
                select(Order.id).where(Order.contract_id == contract_id)) is not None

    await wait_until(ordered)
    await page.goto(f"/customers/{customer_id}")
    await expect(page.locator("#customer-contracts")).to_contain_text("已签署")
    await page.locator("#customer-orders").get_by_role("link", name=re.compile(r"^SO-")).click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("订单 SO-")
    await expect(page.locator("#instalments")).to_contain_text("¥180,000.00")
    await expect(page.locator("#instalments")).to_contain_text("未到期")


async def test_refused_moves_and_bad_values_are_shown_on_the_form_not_a_500(
    web: httpx.AsyncClient,
    worker: Worker,
    org: Org,
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    customer_id = await make_customer(client, org.headers["rep"], "宁波北仑港务物流有限公司")
    token = await web_sign_in(web, "rep")
    bad = await web.post("/deals/new", data={
        "csrf_token": token, "customer_id": str(customer_id), "name": "北仑 · 堆场扩建",
        "amount": "十万"})
    assert bad.status_code == 422, bad.text
    assert 'value="十万"' in bad.text and 'id="e-amount"' in bad.text
    made = await web.post("/deals/new", data={
        "csrf_token": token, "customer_id": str(customer_id), "name": "北仑 · 堆场扩建",
        "amount": "120000"})
    assert made.status_code == 303, made.text
    deal_path = made.headers["location"]

    quote = await client.post(f"/api/deals/{deal_path.rsplit('/', 1)[1]}/quotes",
                              headers=org.headers["rep"], json={"lines": [
                                  {"description": "脉冲除尘器", "quantity": "2",
                                   "unit_price": "50000"}]})
    assert quote.status_code == 201, quote.text
    quote_path = f"/quotes/{quote.json()['id']}"
    shown = await web.get(quote_path)
    assert "脉冲除尘器" in shown.text and "¥113,000.00" in shown.text and "草稿" in shown.text
    sending = await web.post(f"{quote_path}/send", data={"csrf_token": token})
    assert sending.status_code == 409 and "报价单需先通过审批" in sending.text
    submitted = await web.post(f"{quote_path}/submit", data={"csrf_token": token})
    assert submitted.status_code == 303, submitted.text
    approved = await web.get(quote_path)
    assert "报价单已提交" in approved.text and "已批准" in approved.text
    assert f'action="{quote_path}/send"' in approved.text

    lost = await web.post(f"{deal_path}/move", data={"csrf_token": token, "stage": "lost"})
    assert lost.status_code == 422
    assert "标记输单需从列表中选择原因" in lost.text
    jump = await web.post(f"{deal_path}/move", data={"csrf_token": token, "stage": "won"})
    assert jump.status_code == 409
    assert "预算、决策人、客户已接受的报价单" in jump.text
    forged = await web.post(f"{deal_path}/move", data={"stage": "lost", "lost_reason": "价格"})
    assert forged.status_code == 403
    done = await web.post(f"{deal_path}/move",
                          data={"csrf_token": token, "stage": "lost", "lost_reason": "价格"})
    assert done.status_code == 303
    closed = await web.get(deal_path)
    assert "输单" in closed.text and "价格" in closed.text
    assert 'id="move-form"' not in closed.text

    web.cookies.set("lang", "en")
    english = await web.get("/deals", params={"status": "lost"})
    assert english.status_code == 200
    assert "My deals" in english.text and "北仑 · 堆场扩建" in english.text
    board = await web.get("/deals", params={"view": "board", "status": "lost"})
    assert "Pipeline board" in board.text and "Initial contact" in board.text
    column = re.search(r'data-stage="lost">(.*?)</section>', board.text, re.S)
    assert column, board.text
    assert "¥120,000.00" in column.group(1) and "¥0.00" in column.group(1)  # 0 % weighted


async def test_the_link_page_explains_forged_and_expired_links_in_the_approvers_language(
    client: httpx.AsyncClient,
    org: Org,
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    finance = org.ids["finance"]
    forged = await client.get(_link(settings, 1, finance, key="not-the-key-" + "x" * 32))
    assert forged.status_code == 403
    assert "链接无效" in forged.text and "此链接无效" in forged.text
    assert 'name="csrf_token"' not in forged.text

    async with transaction(sessions) as session:
        await session.execute(update(User).where(User.id == finance).values(locale="en"))
    expired = await client.get(_link(settings, 1, finance, expires_in=timedelta(minutes=-1)))
    assert expired.status_code == 410
    assert "This link has expired" in expired.text and "answer from your inbox" in expired.text
    async with sessions() as session:
        assert await session.scalar(select(Contract.id)) is None


async def test_the_inbox_still_finishes_a_plain_task_and_needs_a_decision_for_an_approval(
    web: httpx.AsyncClient,
    org: Org,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        plain = Task(key="t/plain", kind="deal.stage_task", title="预约产品演示",
                     assignee_id=org.ids["legal"])
        asking = Task(key="t/approval", kind="approval", title="审批合同",
                      assignee_id=org.ids["legal"], detail={"approval_id": 1})
        session.add_all([plain, asking])
        await session.flush()
        plain_id, asking_id = plain.id, asking.id
    token = await web_sign_in(web, "legal")
    inbox = await web.get("/tasks")
    assert f'id="decide-{asking_id}"' in inbox.text and f'id="decide-{plain_id}"' not in inbox.text
    undecided = await web.post(f"/tasks/{asking_id}/complete", data={"csrf_token": token})
    assert undecided.status_code == 422
    assert "审批需要选择批准、驳回或要求修改" in undecided.text
    done = await web.post(f"/tasks/{plain_id}/complete", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == "/tasks"
    assert "待办已完成" in (await web.get("/tasks")).text
    async with sessions() as session:
        assert (await session.get(Task, plain_id)).status == "done"
        assert (await session.get(Task, asking_id)).status == "open"
