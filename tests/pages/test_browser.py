"""The pages in a real headless Chromium: sign-in, customers, duplicates, follow-ups, language."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from stdnum.cn import uscc
from temporalio.client import Client, WorkflowExecutionStatus

from domain import custom_field, customer, user
from domain.access import SYSTEM
from domain.db import transaction
from domain.follow_up import FollowUp
from domain.settings import Settings
from tests.conftest import PASSWORD, MakeUser
from tests.pages.conftest import SignIn

pytestmark = pytest.mark.pages

SHANGHAI = ZoneInfo("Asia/Shanghai")


def credit_code(first17: str) -> str:
    return first17 + uscc.calc_check_digit(first17)


CODE = credit_code("91310115MA1H7XK20")


async def _field(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with transaction(sessions) as session:
        await custom_field.create(
            session,
            actor=SYSTEM,
            data=custom_field.CustomFieldCreate(
                entity="customer",
                key="level",
                label="客户等级",
                label_en="Tier",
                type="single_select",
                options=["A 级", "B 级", "C 级"],
            ),
        )


async def _company(
    sessions: async_sessionmaker[AsyncSession], name: str, owner_id: int, **extra: object
) -> int:
    async with transaction(sessions) as session:
        row = await customer.create(
            session,
            actor=SYSTEM,
            data=customer.CustomerCreate(kind="company", name=name, owner_id=owner_id, **extra),
        )
        return row.id


async def test_sign_in_with_a_wrong_then_the_right_password(
    page: Page, make_user: MakeUser
) -> None:
    await make_user("mei")
    await page.goto("/customers?stage=lead")
    await expect(page).to_have_url(re.compile(r"/login\?next="))
    await page.get_by_label("用户名").fill("mei")
    await page.get_by_label("密码").fill("not-the-password")
    async with page.expect_response(lambda r: r.url.endswith("/login")) as answer:
        await page.get_by_role("button", name="登录").click()
    assert (await answer.value).status == 401
    await expect(page.get_by_role("alert")).to_have_text("用户名或密码错误")
    await expect(page.get_by_label("用户名")).to_have_value("mei")
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()
    await expect(page).to_have_url(re.compile(r"/customers\?stage=lead$"))
    await expect(page.get_by_role("heading", level=1)).to_contain_text("客户档案")
    await expect(page.locator(".who")).to_have_text("mei")


async def test_create_a_company_with_a_custom_field_and_find_it(
    page: Page, make_user: MakeUser, sign_in: SignIn, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await make_user("mei")
    await _field(sessions)
    await sign_in(page, "mei")
    await page.get_by_role("link", name="新建客户").click()
    await expect(page.get_by_label("企业客户")).to_be_checked()
    await expect(page.get_by_label("会员等级")).to_be_hidden()
    await page.get_by_label("名称").fill("上海云杉信息科技有限公司")
    await page.get_by_label("统一社会信用代码").fill(CODE.lower())
    await page.get_by_label("行业").fill("软件和信息技术服务")
    await page.get_by_label("电话").fill("138 0013 8000")
    await page.get_by_label("城市").fill("上海")
    await page.get_by_label("标签").fill("重点客户，华东")
    await page.get_by_label("客户等级").select_option("A 级")
    await page.get_by_role("button", name="保存").click()

    await expect(page).to_have_url(re.compile(r"/customers/\d+$"))
    await expect(page.get_by_role("status")).to_have_text("客户档案已创建")
    await expect(page.get_by_role("heading", level=1)).to_have_text("上海云杉信息科技有限公司")
    details = page.locator("section", has=page.get_by_role("heading", name="基本资料"))
    await expect(details).to_contain_text(CODE)
    await expect(details).to_contain_text("138 0013 8000")
    custom = page.locator("section", has=page.get_by_role("heading", name="自定义字段"))
    await expect(custom).to_contain_text("客户等级")
    await expect(custom).to_contain_text("A 级")
    await expect(page.locator(".profile-head")).to_contain_text("重点客户")
    await expect(page.locator(".timeline")).to_contain_text("建档")

    await page.get_by_role("link", name="客户", exact=True).click()
    row = page.get_by_role("row", name=re.compile("上海云杉信息科技有限公司"))
    await expect(row).to_contain_text("企业客户")
    await expect(row).to_contain_text("上海")
    await expect(row).to_contain_text("mei")
    await expect(row).to_contain_text("潜在客户")
    await expect(row).to_contain_text("华东")
    await page.get_by_role("searchbox").fill("云杉")
    await page.get_by_role("button", name="搜索").click()
    await expect(page.get_by_role("row")).to_have_count(2)


async def test_a_duplicate_credit_code_warns_and_can_be_created_anyway(
    page: Page, make_user: MakeUser, sign_in: SignIn, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mei = await make_user("mei")
    existing = await _company(sessions, "上海云杉信息科技有限公司", mei.id, credit_code=CODE)
    await sign_in(page, "mei")
    await page.goto("/customers/new")
    await page.get_by_label("名称").fill("云杉信息（上海）")
    await page.get_by_label("统一社会信用代码").fill(CODE)
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.get_by_role("button", name="保存").click()
    assert (await answer.value).status == 409
    notice = page.locator("#duplicate-notice")
    await expect(notice).to_contain_text("可能重复：上海云杉信息科技有限公司")
    await expect(notice.get_by_role("link")).to_have_attribute("href", f"/customers/{existing}")
    await expect(page.get_by_label("名称")).to_have_value("云杉信息（上海）")
    await page.get_by_label("仍然创建").check()
    await page.get_by_role("button", name="保存").click()
    await expect(page).to_have_url(re.compile(r"/customers/\d+$"))
    assert not page.url.endswith(f"/customers/{existing}")
    await expect(page.get_by_role("heading", level=1)).to_have_text("云杉信息(上海)")
    await page.goto(f"/customers?q={CODE}")
    await expect(page.get_by_role("row")).to_have_count(3)


async def test_log_a_follow_up_and_see_it_on_the_timeline(
    page: Page,
    make_user: MakeUser,
    sign_in: SignIn,
    sessions: async_sessionmaker[AsyncSession],
    temporal_client: Client,
    settings: Settings,
) -> None:
    mei = await make_user("mei")
    async with transaction(sessions) as session:
        await user.update(
            session, actor=SYSTEM, user_id=mei.id, data=user.UserUpdate(display_name="李梅")
        )
    customer_id = await _company(
        sessions,
        "杭州青禾食品股份有限公司",
        mei.id,
        city="杭州",
        industry="食品制造",
        tags=["重点客户"],
        credit_code=credit_code("91330106MA2B3CD40"),
    )
    async with transaction(sessions) as session:
        boss = await customer.add_contact(
            session,
            actor=SYSTEM,
            customer_id=customer_id,
            data=customer.ContactCreate(
                name="张伟", title="总经理", decision_role="decision_maker"
            ),
        )
        buyer = await customer.add_contact(
            session,
            actor=SYSTEM,
            customer_id=customer_id,
            data=customer.ContactCreate(
                name="王芳", title="采购经理", reports_to_id=boss.id, decision_role="influencer"
            ),
        )
        await customer.add_contact(
            session,
            actor=SYSTEM,
            customer_id=customer_id,
            data=customer.ContactCreate(
                name="刘洋", title="仓库主管", reports_to_id=buyer.id, decision_role="user"
            ),
        )
        for on, amount in ((date(2026, 3, 2), "1000.00"), (date(2026, 9, 18), "1469.00")):
            await customer.record_purchase(
                session, customer_id=customer_id, on=on, amount=Decimal(amount)
            )
    await sign_in(page, "mei")
    await page.goto(f"/customers/{customer_id}")
    chain = page.locator(".chain").first
    await expect(chain.locator("li li li")).to_contain_text("刘洋")
    await expect(chain.locator("li li li")).to_contain_text("使用者")
    await expect(chain).to_contain_text("决策者")
    deals = page.locator("section", has=page.get_by_role("heading", name="交易概况"))
    await expect(deals).to_contain_text("¥2,469.00")
    await expect(deals).to_contain_text("¥1,234.50")

    tomorrow = (datetime.now(SHANGHAI) + timedelta(days=1)).replace(
        hour=10, minute=0, second=0, microsecond=0
    )
    form = page.locator("form.follow-up")
    await form.get_by_label("跟进方式").select_option("visit")
    await form.get_by_label("联系人").select_option(label="王芳")
    await form.get_by_label("跟进内容").fill("上门演示新品，客户对冷链方案感兴趣")
    await form.get_by_label("下一步").fill("发送报价单")
    await form.get_by_label("下次联系时间").fill(tomorrow.strftime("%Y-%m-%dT%H:%M"))
    await form.get_by_role("button", name="保存跟进记录").click()

    await expect(page.get_by_role("status")).to_have_text("跟进记录已保存")
    first = page.locator(".timeline .event").first
    await expect(first).to_contain_text("上门拜访")
    await expect(first).to_contain_text("上门演示新品，客户对冷链方案感兴趣")
    await expect(first).to_contain_text("发送报价单")
    await expect(first).to_contain_text(tomorrow.strftime("%Y-%m-%d 10:00"))
    await expect(first).to_contain_text("李梅")

    async with sessions() as session:
        logged = await session.scalar(select(FollowUp).where(FollowUp.customer_id == customer_id))
    assert logged is not None
    assert logged.next_contact_at == tomorrow
    assert logged.contact_id == buyer.id
    reminder = settings.workflow_id("follow-up", logged.id)
    described = await temporal_client.get_workflow_handle(reminder).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING

    await page.screenshot(path="/tmp/profile.png", full_page=True)

    await form.get_by_label("跟进内容").fill("   ")
    await form.get_by_role("button", name="保存跟进记录").click()
    await expect(form.get_by_role("alert")).to_contain_text("跟进内容")
    await expect(page.locator(".timeline .event")).to_have_count(5)


async def test_switch_to_english(
    page: Page, make_user: MakeUser, sign_in: SignIn, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mei = await make_user("mei")
    await _field(sessions)
    customer_id = await _company(
        sessions, "苏州恒川精密机械有限公司", mei.id, custom={"level": "B 级"}
    )
    await sign_in(page, "mei")
    await page.goto(f"/customers/{customer_id}")
    await page.get_by_role("link", name="English").click()
    await expect(page).to_have_url(re.compile(rf"/customers/{customer_id}$"))
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(page.get_by_role("link", name="Customers", exact=True)).to_be_visible()
    await expect(page.get_by_role("heading", name="Timeline")).to_be_visible()
    await expect(page.get_by_role("heading", name="Contacts and decision chain")).to_be_visible()
    await expect(page.locator(".profile-head")).to_contain_text("Company")
    await expect(page.locator(".profile-head")).to_contain_text("Prospect")
    await expect(page.get_by_text("Tier")).to_be_visible()
    await page.get_by_role("link", name="Customers", exact=True).click()
    await expect(page.get_by_role("link", name="New customer")).to_be_visible()
    await expect(page.get_by_role("columnheader", name="Owner")).to_be_visible()
    await page.get_by_role("link", name="中文").click()
    await expect(page.get_by_role("link", name="新建客户")).to_be_visible()


async def test_a_rep_cannot_open_another_reps_customer(
    page: Page, make_user: MakeUser, sign_in: SignIn, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await make_user("mei")
    lei = await make_user("lei")
    theirs = await _company(sessions, "深圳前海远帆贸易有限公司", lei.id)
    await sign_in(page, "mei")
    await expect(page.get_by_text("远帆")).to_have_count(0)
    response = await page.goto(f"/customers/{theirs}")
    assert response is not None and response.status == 404
    await expect(page.get_by_role("heading", level=1)).to_have_text("未找到")
    await expect(page.get_by_text("远帆")).to_have_count(0)
