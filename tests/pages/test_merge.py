"""The duplicate review page: a group found by a shared phone, merged in Chromium with the
absorbed record's address chosen, seen on the survivor's profile, and undone; refusals next to
the form in the user's language; the page in English."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx
import pytest
from playwright.async_api import Page, expect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import customer
from domain.access import SYSTEM, Role
from domain.db import transaction
from tests.conftest import MakeUser
from tests.pages.conftest import CSRF, SignIn, web_sign_in

pytestmark = pytest.mark.pages

Sessions = async_sessionmaker[AsyncSession]
KEPT = "上海云杉科技有限公司"
DUPLICATE = "云杉信息技术"
KEPT_ADDRESS = "上海市徐汇区漕溪北路 88 号"
NEW_ADDRESS = "上海市浦东新区张江路 1 号"


async def _team(make_user: MakeUser, make_team: Callable[..., Awaitable[int]]) -> int:
    """A sales manager `boss` whose team's rep owns the customers; the rep's id."""
    boss = await make_user("boss", Role.sales_manager)
    team = await make_team("华东销售部", manager_id=boss.id)
    return (await make_user("rep", Role.sales, team_id=team)).id


async def _duplicates(sessions: Sessions, owner_id: int) -> tuple[int, int]:
    """Two companies with the same phone; the second has a contact."""
    async with transaction(sessions) as session:
        kept = await customer.create(session, actor=SYSTEM, data=customer.CustomerCreate(
            kind="company", name=KEPT, phone="13800138000", owner_id=owner_id,
            registered_address=KEPT_ADDRESS))
        other = await customer.create(session, actor=SYSTEM, allow_duplicate=True,
                                      data=customer.CustomerCreate(
            kind="company", name=DUPLICATE, phone="13800138000", owner_id=owner_id,
            registered_address=NEW_ADDRESS, city="上海"))
        await customer.add_contact(session, actor=SYSTEM, customer_id=other.id,
                                   data=customer.ContactCreate(name="林经理", mobile="13900139000"))
        return kept.id, other.id


async def test_merge_two_duplicates_then_undo(
    page: Page,
    sign_in: SignIn,
    sessions: Sessions,
    make_user: MakeUser,
    make_team: Callable[..., Awaitable[int]],
) -> None:
    kept, other = await _duplicates(sessions, await _team(make_user, make_team))
    await sign_in(page, "boss")
    await page.get_by_role("link", name="查重与合并").click()
    await expect(page).to_have_url(re.compile(r"/customers/duplicates$"))
    group = page.locator(f"#group-{kept}-{other}")
    await expect(group).to_contain_text("电话相同：138 0013 8000")
    await expect(group.get_by_role("link", name=DUPLICATE)).to_be_visible()

    await group.get_by_text("审核并合并").click()
    await expect(group.get_by_label(f"保留 {KEPT}")).to_be_checked()
    await expect(group.get_by_label(f"并入 {DUPLICATE}")).to_be_checked()
    address = group.get_by_role("group", name="注册地址")
    await expect(address.get_by_label(KEPT_ADDRESS)).to_be_checked()
    await address.get_by_label(NEW_ADDRESS).check()
    # The survivor has no city: the absorbed one's fills it unless another is picked.
    await expect(group.get_by_role("group", name="城市").get_by_label("上海")).to_be_checked()
    await group.get_by_role("button", name="合并").click()

    await expect(page).to_have_url(re.compile(r"/customers/merges/\d+$"))
    result = page.url
    await expect(page.get_by_role("status")).to_have_text("客户已合并")
    await expect(page.locator("#merge-moved")).to_contain_text("联系人 1 条")
    await expect(page.locator("#merge-changed")).to_contain_text(NEW_ADDRESS)

    await page.locator("#merge-outcome").get_by_role("link", name=KEPT).click()
    await expect(page).to_have_url(re.compile(rf"/customers/{kept}$"))
    await expect(page.locator("dl.facts").first).to_contain_text(NEW_ADDRESS)
    await expect(page.locator("#contacts")).to_contain_text("林经理")

    await page.goto(f"/customers/{other}")
    await expect(page.locator("#merged-away")).to_contain_text(f"客户 #{other} 已合并到")
    await page.locator("#merged-away").get_by_role("link", name=KEPT).click()
    await expect(page).to_have_url(re.compile(rf"/customers/{kept}$"))

    await page.goto(result)
    await page.get_by_role("button", name="撤销合并").click()
    await expect(page.get_by_role("status")).to_have_text("合并已撤销")
    await expect(page.locator("#merge-undo")).to_contain_text("已于")
    await expect(page.get_by_role("button", name="撤销合并")).to_have_count(0)

    await page.goto(f"/customers/{kept}")
    await expect(page.locator("dl.facts").first).to_contain_text(KEPT_ADDRESS)
    await expect(page.locator("#contacts")).not_to_contain_text("林经理")
    await page.goto(f"/customers/{other}")
    await expect(page.get_by_role("heading", name=DUPLICATE)).to_be_visible()
    await expect(page.locator("dl.facts").first).to_contain_text(NEW_ADDRESS)
    await expect(page.locator("#contacts")).to_contain_text("林经理")


async def _post_merge(web: httpx.AsyncClient, token: str, kept: int, other: int,
                      **extra: str) -> httpx.Response:
    return await web.post("/customers/duplicates/merge", data={
        "csrf_token": token, "group": f"{kept},{other}", "page": "1",
        "survivor_id": str(kept), **extra,
    })


async def test_refusals_show_next_to_the_form_in_the_users_language(
    web: httpx.AsyncClient,
    sessions: Sessions,
    make_user: MakeUser,
    make_team: Callable[..., Awaitable[int]],
) -> None:
    kept, other = await _duplicates(sessions, await _team(make_user, make_team))
    token = await web_sign_in(web, "boss")

    nothing = await _post_merge(web, token, kept, other)
    assert nothing.status_code == 422
    assert "并入的记录：" in nothing.text and '<details open>' in nothing.text

    stranger = await _post_merge(web, token, kept, other, absorbed_ids=str(other),
                                 **{"pick.registered_address": "999999"})
    assert stranger.status_code == 422
    assert "请选择保留记录或被并入的记录之一" in stranger.text

    done = await _post_merge(web, token, kept, other, absorbed_ids=str(other))
    assert done.status_code == 303
    merge_url = done.headers["location"]
    form = await web.get(merge_url)
    undo = CSRF.search(form.text)
    assert undo
    assert (await web.post(f"{merge_url}/undo", data={"csrf_token": undo.group(1)})
            ).status_code == 303
    web.cookies.set("lang", "en")
    again = await web.post(f"{merge_url}/undo", data={"csrf_token": undo.group(1)})
    assert again.status_code == 409
    assert "This merge has been undone already" in again.text


async def test_the_page_is_for_managers_and_reads_in_english(
    page: Page,
    sign_in: SignIn,
    web: httpx.AsyncClient,
    sessions: Sessions,
    make_user: MakeUser,
    make_team: Callable[..., Awaitable[int]],
) -> None:
    kept, other = await _duplicates(sessions, await _team(make_user, make_team))
    await web_sign_in(web, "rep")
    assert (await web.get("/customers/duplicates")).status_code == 403
    assert "/customers/duplicates" not in (await web.get("/customers")).text

    await sign_in(page, "boss")
    await page.goto("/lang/en?next=/customers")
    await page.get_by_role("link", name="Duplicates").click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text("Duplicates")
    group = page.locator(f"#group-{kept}-{other}")
    await expect(group).to_contain_text("Same phone: 138 0013 8000")
    await group.get_by_text("Review and merge").click()
    await expect(group.get_by_label(f"Keep {KEPT}")).to_be_checked()
    await expect(group.get_by_role("group", name="Fields that differ")).to_contain_text(
        "Registered address")
    await expect(group.get_by_role("button", name="Merge")).to_be_visible()
