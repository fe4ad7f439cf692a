"""Lead pages: my leads with the SLA countdown, the pool, one lead and its transitions.

The real worker runs on the Temporal dev server, so every button goes through the lead's
workflow exactly as the API's routes do. One flow runs in Chromium; the rest through httpx.
"""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from domain import customer
from domain.access import SYSTEM
from domain.db import transaction, utcnow
from domain.deal import Deal
from domain.lead import Lead
from domain.policy import PolicyKind
from tests.leads import SalesTeam, capture, lead_row, publish, settled
from tests.pages.conftest import SignIn, web_sign_in

pytestmark = pytest.mark.pages

ROUND_THE_CLOCK = {
    "default_chain": {
        "name": "全天候",
        "business_hours": False,
        "steps": [
            {"after": "PT30M", "action": "notify_owner"},
            {"after": "PT2H", "action": "notify_manager"},
        ],
    }
}


def _plain(html: str) -> str:
    """The page's text without its tags, as a reader sees it."""
    return re.sub(r"<[^>]+>", "", html)


async def _assigned(
    sessions: async_sessionmaker[AsyncSession], lead_id: int, owner_id: int
) -> Lead:
    return await settled(
        sessions, lead_id, lambda r: r.owner_id == owner_id and r.sla_due_at is not None
    )


async def _lead_for(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
    owner_id: int,
    **fields: object,
) -> int:
    """A lead captured through the API that the round robin gives to `owner_id`."""
    lead = (await capture(client, admin, **fields))["lead"]
    await _assigned(sessions, lead["id"], owner_id)
    return lead["id"]


async def test_a_rep_works_a_new_lead_from_first_contact_to_customer(
    page: Page,
    sign_in: SignIn,
    worker: Worker,
    team: SalesTeam,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await publish(sessions, PolicyKind.lead_sla, ROUND_THE_CLOCK)
    await sign_in(page, "rep1")
    await page.goto("/leads")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("我的线索")
    await page.get_by_text("新建线索").click()
    form = page.locator("#lead-form")
    await form.get_by_label("公司").fill("杭州青禾食品股份有限公司")
    await form.get_by_label("姓名").fill("王芳")
    await form.get_by_label("电话").fill("138 0013 8000")
    await form.get_by_label("意向产品").fill("冷链仓储")
    await form.get_by_label("来源").fill("展会")
    await form.get_by_role("button", name="创建线索").click()
    await expect(page.locator("#capture-notice")).to_contain_text("已创建线索 #")
    found = re.search(r"created=(\d+)", page.url)
    assert found, page.url
    lead_id = int(found.group(1))

    await _assigned(sessions, lead_id, team.ids["rep1"])
    await page.goto("/leads")
    row = page.get_by_role("row", name=re.compile("杭州青禾食品股份有限公司"))
    await expect(row).to_contain_text("王芳")
    await expect(row).to_contain_text("138 0013 8000")
    await expect(row).to_contain_text("展会")
    await expect(row).to_contain_text("已分配")
    await expect(row).to_contain_text("rep1")
    await expect(row.locator(".sla")).to_have_text(re.compile(r"^还剩 (29|30) 分钟$"))
    await expect(row).to_contain_text("首次联系提醒")

    await row.get_by_role("link", name="杭州青禾食品股份有限公司").click()
    await expect(page).to_have_url(re.compile(rf"/leads/{lead_id}$"))
    await expect(page.locator("#lead-rule")).to_have_text("华东轮询")
    await page.get_by_label("联系内容").fill("电话沟通，客户需要冷链仓储方案")
    await page.get_by_role("button", name="记录联系").click()
    await expect(page.get_by_role("status")).to_have_text("已记录联系")
    await expect(page.locator(".profile-head .badge").first).to_have_text("已联系")
    await expect(page.locator("#history")).to_contain_text("电话沟通，客户需要冷链仓储方案")

    await page.get_by_role("button", name="确认有效").click()
    await expect(page.get_by_role("status")).to_have_text("线索已确认有效")
    await expect(page.locator(".profile-head .badge").first).to_have_text("有效")

    await page.get_by_label("商机名称").fill("青禾冷链仓储项目")
    await page.get_by_label("金额").fill("120000")
    await page.get_by_role("button", name="转化").click()
    await expect(page).to_have_url(re.compile(r"/customers/\d+$"))
    await expect(page.get_by_role("status")).to_contain_text("线索已转化")
    await expect(page.get_by_role("heading", level=1)).to_have_text("杭州青禾食品股份有限公司")
    await expect(page.locator(".chain")).to_contain_text("王芳")
    await expect(page.locator(".timeline")).to_contain_text("线索转化")

    row_after = await lead_row(sessions, lead_id)
    assert row_after.status == "converted"
    assert page.url.endswith(f"/customers/{row_after.customer_id}")
    async with sessions() as session:
        deal = await session.scalar(select(Deal).where(Deal.lead_id == lead_id))
    assert deal is not None and deal.name == "青禾冷链仓储项目"
    assert deal.owner_id == team.ids["rep1"]


async def test_a_pooled_lead_is_claimed_and_the_daily_limit_is_explained(
    web: httpx.AsyncClient,
    worker: Worker,
    team: SalesTeam,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await publish(sessions, PolicyKind.assignment, {})
    first = (
        await capture(
            client,
            admin,
            company="深圳前海远帆贸易有限公司",
            contact_name="陈先生",
            phone="13900139000",
        )
    )["lead"]
    await settled(sessions, first["id"], lambda r: r.status == "pooled")
    token = await web_sign_in(web, "rep2")
    pool = await web.get("/pool")
    assert pool.status_code == 200
    assert "深圳前海远帆贸易有限公司" in pool.text
    assert f'action="/pool/{first["id"]}/claim"' in pool.text
    assert "深圳前海远帆贸易有限公司" not in (await web.get("/leads")).text

    claimed = await web.post(f"/pool/{first['id']}/claim", data={"csrf_token": token})
    assert claimed.status_code == 303, claimed.text
    assert claimed.headers["location"] == f"/leads/{first['id']}"
    lead_page = await web.get(claimed.headers["location"])
    assert "已领取线索" in lead_page.text
    assert "从公海领取" in lead_page.text and "已分配" in lead_page.text
    row = await lead_row(sessions, first["id"])
    assert (row.owner_id, row.status) == (team.ids["rep2"], "assigned")
    assert "深圳前海远帆贸易有限公司" in (await web.get("/leads")).text

    await publish(sessions, PolicyKind.pool, {"daily_claim_limit": 1})
    second = (
        await capture(client, admin, company="广州白云拓海物流有限公司", phone="13700137000")
    )["lead"]
    await settled(sessions, second["id"], lambda r: r.status == "pooled")
    refused = await web.post(f"/pool/{second['id']}/claim", data={"csrf_token": token})
    assert refused.status_code == 409, refused.text
    assert "今天已领取 1 条线索，达到每日上限" in refused.text
    assert "广州白云拓海物流有限公司" in refused.text  # the pool, shown again
    web.cookies.set("lang", "en")
    english = await web.post(f"/pool/{second['id']}/claim", data={"csrf_token": token})
    assert english.status_code == 409
    assert "You have claimed 1 lead today, the daily limit" in english.text
    row = await lead_row(sessions, second["id"])
    assert (row.owner_id, row.status) == (None, "pooled")


async def test_a_refused_transition_is_explained_in_chinese_not_a_500(
    web: httpx.AsyncClient,
    worker: Worker,
    team: SalesTeam,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    lead_id = await _lead_for(
        client,
        admin,
        sessions,
        team.ids["rep1"],
        company="苏州恒川精密机械有限公司",
        phone="13600136000",
    )
    token = await web_sign_in(web, "rep1")
    shown = await web.get(f"/leads/{lead_id}")
    assert shown.status_code == 200
    assert f'action="/leads/{lead_id}/contact"' in shown.text
    assert f'action="/leads/{lead_id}/qualify"' not in shown.text  # not contacted yet
    assert f'action="/leads/{lead_id}/reassign"' not in shown.text  # reps do not reassign

    qualify = await web.post(f"/leads/{lead_id}/qualify", data={"csrf_token": token})
    assert qualify.status_code == 409, qualify.text
    assert "线索当前状态为「已分配」，不能确认有效" in qualify.text
    assert "苏州恒川精密机械有限公司" in qualify.text  # the lead page, shown again
    convert = await web.post(f"/leads/{lead_id}/convert", data={"csrf_token": token})
    assert convert.status_code == 409
    assert "不能转化" in convert.text
    reassign = await web.post(
        f"/leads/{lead_id}/reassign",
        data={"csrf_token": token, "owner_id": str(team.ids["rep2"])},
    )
    assert reassign.status_code == 403
    assert "只有负责人的主管才能执行此操作" in reassign.text
    reason = await web.post(
        f"/leads/{lead_id}/disqualify", data={"csrf_token": token, "reason": "不喜欢"}
    )
    assert reason.status_code == 422
    assert "请从列表中选择无效原因" in reason.text
    row = await lead_row(sessions, lead_id)
    assert (row.status, row.owner_id) == ("assigned", team.ids["rep1"])

    disqualified = await web.post(
        f"/leads/{lead_id}/disqualify", data={"csrf_token": token, "reason": "无预算"}
    )
    assert disqualified.status_code == 303
    closed = await web.get(f"/leads/{lead_id}")
    assert "线索已标记为无效" in closed.text and "无预算" in closed.text
    again = await web.post(f"/leads/{lead_id}/contact", data={"csrf_token": token})
    assert again.status_code == 409
    assert "线索已结束" in again.text or "不能记录联系" in again.text


async def test_a_manager_sees_the_team_and_reassigns_by_hand(
    web: httpx.AsyncClient,
    worker: Worker,
    team: SalesTeam,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    lead_id = await _lead_for(
        client,
        admin,
        sessions,
        team.ids["rep1"],
        company="南京紫金云数据有限公司",
        phone="13500135000",
    )
    await _lead_for(
        client,
        admin,
        sessions,
        team.ids["rep2"],
        company="合肥科里信息技术有限公司",
        phone="13400134000",
    )
    token = await web_sign_in(web, "boss")
    listing = await web.get("/leads")
    assert "团队线索" in listing.text
    assert "南京紫金云数据有限公司" in listing.text and "合肥科里信息技术有限公司" in listing.text
    shown = await web.get(f"/leads/{lead_id}")
    assert f'action="/leads/{lead_id}/reassign"' in shown.text
    moved = await web.post(
        f"/leads/{lead_id}/reassign",
        data={"csrf_token": token, "owner_id": str(team.ids["rep2"])},
    )
    assert moved.status_code == 303, moved.text
    after = await web.get(moved.headers["location"])
    assert "线索已改派" in after.text and "手动改派" in after.text
    row = await lead_row(sessions, lead_id)
    assert row.owner_id == team.ids["rep2"]
    nobody = await web.post(f"/leads/{lead_id}/reassign", data={"csrf_token": token})
    assert nobody.status_code == 422
    assert "负责人" in nobody.text


async def test_a_rep_cannot_open_another_reps_lead(
    web: httpx.AsyncClient,
    worker: Worker,
    team: SalesTeam,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    theirs = await _lead_for(
        client,
        admin,
        sessions,
        team.ids["rep1"],
        company="深圳前海远帆贸易有限公司",
        phone="13900139000",
    )
    token = await web_sign_in(web, "rep2")
    for path in (f"/leads/{theirs}", "/leads/abc", "/leads/999999"):
        response = await web.get(path)
        assert response.status_code == 404, path
        assert "未找到" in response.text
        assert "远帆" not in response.text
    assert "远帆" not in (await web.get("/leads")).text
    for action in ("contact", "qualify", "convert"):
        posted = await web.post(f"/leads/{theirs}/{action}", data={"csrf_token": token})
        assert posted.status_code == 404, action
        assert "远帆" not in posted.text
    assert (await lead_row(sessions, theirs)).status == "assigned"


async def test_a_post_without_the_csrf_token_is_refused(
    web: httpx.AsyncClient,
    worker: Worker,
    team: SalesTeam,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    lead_id = await _lead_for(
        client,
        admin,
        sessions,
        team.ids["rep1"],
        company="苏州恒川精密机械有限公司",
        phone="13600136000",
    )
    await web_sign_in(web, "rep1")
    for path, form in (
        (f"/leads/{lead_id}/contact", {"note": "伪造"}),
        ("/leads", {"company": "伪造有限公司", "phone": "13300133000"}),
        (f"/leads/{lead_id}/disqualify", {"reason": "无预算", "csrf_token": "0" * 64}),
    ):
        refused = await web.post(path, data=form)
        assert refused.status_code == 403, path
        assert "表单已过期" in refused.text
    row = await lead_row(sessions, lead_id)
    assert (row.status, row.first_contacted_at) == ("assigned", None)
    async with sessions() as session:
        assert await session.scalar(select(Lead).where(Lead.company == "伪造有限公司")) is None


async def test_the_list_counts_down_filters_and_flags_overdue_leads(
    web: httpx.AsyncClient,
    worker: Worker,
    team: SalesTeam,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    late = await _lead_for(
        client,
        admin,
        sessions,
        team.ids["rep1"],
        company="南京紫金云数据有限公司",
        phone="13500135000",
    )
    await _lead_for(
        client,
        admin,
        sessions,
        team.ids["rep2"],
        company="合肥科里信息技术有限公司",
        phone="13400134000",
    )
    await _lead_for(
        client,
        admin,
        sessions,
        team.ids["rep1"],
        company="无锡太湖智造有限公司",
        phone="13200132000",
    )
    async with transaction(sessions) as session:
        await session.execute(
            update(Lead).where(Lead.id == late).values(sla_due_at=utcnow() - timedelta(hours=3))
        )
    await web_sign_in(web, "rep1")
    listing = await web.get("/leads")
    assert "我的线索" in listing.text
    assert "合肥科里" not in listing.text  # rep2's
    assert "已超时 3 小时" in listing.text
    assert listing.text.index("南京紫金云") < listing.text.index("无锡太湖")  # by SLA due
    overdue = await web.get("/leads", params={"overdue": "1"})
    assert "南京紫金云" in overdue.text and "无锡太湖" not in overdue.text
    searched = await web.get("/leads", params={"q": "太湖"})
    assert "无锡太湖" in searched.text and "南京紫金云" not in searched.text
    contacted = await web.get("/leads", params={"status": "contacted"})
    assert "没有符合条件的线索" in contacted.text
    bogus = await web.get("/leads", params={"status": "bogus"})
    assert bogus.status_code == 200
    assert "请从列表中选择" in bogus.text
    web.cookies.set("lang", "en")
    english = await web.get("/leads")
    assert "My leads" in english.text and "3 hours overdue" in english.text


async def test_the_new_lead_form_says_what_it_matched(
    web: httpx.AsyncClient,
    worker: Worker,
    team: SalesTeam,
    client: httpx.AsyncClient,
    admin: dict[str, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with transaction(sessions) as session:
        known = await customer.create(
            session,
            actor=SYSTEM,
            data=customer.CustomerCreate(
                kind="company",
                name="上海云杉信息科技有限公司",
                phone="02161234567",
                owner_id=team.ids["rep2"],
            ),
        )
    token = await web_sign_in(web, "rep1")
    missing = await web.post("/leads", data={"csrf_token": token, "company": "无联系方式有限公司"})
    assert missing.status_code == 422
    assert "电话、邮箱、微信号至少填一项" in missing.text
    assert 'value="无联系方式有限公司"' in missing.text

    made = await web.post(
        "/leads",
        data={
            "csrf_token": token,
            "company": "云杉信息",
            "phone": "021 6123 4567",
            "priority": "high",
        },
    )
    assert made.status_code == 303, made.text
    notice = await web.get(made.headers["location"])
    found = re.search(r"created=(\d+)", made.headers["location"])
    assert found, made.headers["location"]
    lead_id = int(found.group(1))
    assert f"已创建线索 #{lead_id}" in _plain(notice.text)
    assert f"匹配到已有客户 #{known.id}：电话相同" in notice.text
    row = await settled(sessions, lead_id, lambda r: r.owner_id is not None)
    assert row.owner_id == team.ids["rep2"]  # the customer's owner
    assert row.assigned_rule == "existing customer owner"
    assert (await web.get(f"/leads/{lead_id}")).status_code == 404  # rep2's now

    again = await web.post(
        "/leads", data={"csrf_token": token, "contact_name": "李雷", "phone": "02161234567"}
    )
    assert again.status_code == 303
    assert again.headers["location"] == f"/leads?merged={lead_id}&by=phone"
    merged = await web.get(again.headers["location"])
    assert f"已并入已有线索 #{lead_id}：电话相同" in _plain(merged.text)
    async with sessions() as session:
        count = len((await session.scalars(select(Lead.id))).all())
    assert count == 1

    assert (await web.post("/logout", data={"csrf_token": token})).status_code == 303
    await web_sign_in(web, "rep2")
    shown = _plain((await web.get(f"/leads/{lead_id}")).text)
    assert f"匹配到已有客户 #{known.id}：电话相同" in shown
    assert "老客户的负责人" in shown and "高优先级" in shown and "再次提交" in shown
