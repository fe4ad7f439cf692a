"""Page behaviour that needs no browser: CSRF, sign-in redirects, access, query counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import custom_field, customer, follow_up, task
from domain.access import SYSTEM, Role
from domain.db import transaction, utcnow
from tests.conftest import MakeUser
from tests.pages.conftest import CSRF, web_sign_in

pytestmark = pytest.mark.pages


async def _company(sessions: async_sessionmaker[AsyncSession], name: str, owner_id: int) -> int:
    async with transaction(sessions) as session:
        row = await customer.create(
            session,
            actor=SYSTEM,
            data=customer.CustomerCreate(kind="company", name=name, owner_id=owner_id),
        )
        return row.id


async def test_a_post_without_the_csrf_token_is_refused(
    web: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("mei")
    token = await web_sign_in(web, "mei")
    form = {"kind": "person", "name": "林晓", "stage": "prospect"}
    refused = await web.post("/customers/new", data=form)
    assert refused.status_code == 403
    assert "表单已过期" in refused.text
    forged = await web.post("/customers/new", data={**form, "csrf_token": "0" * 64})
    assert forged.status_code == 403
    listing = await web.get("/customers")
    assert "林晓" not in listing.text
    accepted = await web.post("/customers/new", data={**form, "csrf_token": token})
    assert accepted.status_code == 303
    assert accepted.headers["location"].startswith("/customers/")


async def test_the_sign_in_form_needs_its_own_token(
    web: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("mei")
    response = await web.post("/login", data={"username": "mei", "password": "x" * 10})
    assert response.status_code == 403
    assert "dossier_session" not in response.headers.get("set-cookie", "")


async def test_pages_redirect_to_sign_in_and_back_only_to_local_paths(
    web: httpx.AsyncClient, make_user: MakeUser
) -> None:
    bounced = await web.get("/customers?q=云杉")
    assert bounced.status_code == 303
    assert bounced.headers["location"].startswith("/login?next=%2Fcustomers%3Fq%3D")
    await make_user("mei")
    form = await web.get("/login", params={"next": "//evil.example/x"})
    assert 'name="next" value="/customers"' in form.text
    token = CSRF.search(form.text)
    assert token
    signed = await web.post(
        "/login",
        data={
            "username": "mei",
            "password": "correct-horse-battery",
            "csrf_token": token.group(1),
            "next": "https://evil.example/",
        },
    )
    assert signed.status_code == 303
    assert signed.headers["location"] == "/customers"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "max-age=43200" in cookie


async def test_logout_clears_the_session(web: httpx.AsyncClient, make_user: MakeUser) -> None:
    await make_user("mei")
    token = await web_sign_in(web, "mei")
    out = await web.post("/logout", data={"csrf_token": token})
    assert out.status_code == 303
    assert (await web.get("/customers")).status_code == 303


async def test_a_rep_gets_a_404_page_for_another_reps_customer(
    web: httpx.AsyncClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await make_user("mei")
    other = await make_user("lei")
    theirs = await _company(sessions, "上海云杉信息科技有限公司", other.id)
    await web_sign_in(web, "mei")
    for path in (f"/customers/{theirs}", f"/customers/{theirs}/edit", "/customers/abc"):
        response = await web.get(path)
        assert response.status_code == 404, path
        assert "未找到" in response.text
        assert "云杉" not in response.text


async def test_admin_pages_are_for_admins(web: httpx.AsyncClient, make_user: MakeUser) -> None:
    await make_user("mei")
    await web_sign_in(web, "mei")
    for path in ("/admin/custom-fields", "/admin/users", "/admin/audit"):
        response = await web.get(path)
        assert response.status_code == 403, path
        assert "无权访问" in response.text
    assert 'href="/admin/custom-fields"' not in (await web.get("/customers")).text


async def test_admin_creates_fields_users_and_teams_and_reads_the_audit_log(
    web: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("root", Role.admin)
    token = await web_sign_in(web, "root")
    bad = await web.post(
        "/admin/custom-fields",
        data={
            "csrf_token": token,
            "entity": "customer",
            "key": "Bad Key",
            "label": "预算",
            "type": "single_select",
        },
    )
    assert bad.status_code == 422
    assert "请用 1–64 位小写字母" in bad.text
    made = await web.post(
        "/admin/custom-fields",
        data={
            "csrf_token": token,
            "entity": "customer",
            "key": "level",
            "label": "客户等级",
            "type": "single_select",
            "options": "A\nB\nC",
        },
    )
    assert made.status_code == 303
    fields_page = await web.get("/admin/custom-fields")
    assert "客户等级" in fields_page.text and "已创建" in fields_page.text
    team = await web.post("/admin/teams", data={"csrf_token": token, "name": "华东销售部"})
    assert team.status_code == 303
    user_made = await web.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "mei",
            "display_name": "李梅",
            "password": "long-enough-1",
            "role": "sales",
            "locale": "zh-CN",
        },
    )
    assert user_made.status_code == 303
    short = await web.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "username": "lei",
            "display_name": "王磊",
            "password": "short",
            "role": "sales",
            "locale": "zh-CN",
        },
    )
    assert short.status_code == 422
    assert "长度至少为 8" in short.text
    users_page = await web.get("/admin/users")
    assert "李梅" in users_page.text and "华东销售部" in users_page.text
    audit_page = await web.get("/admin/audit")
    assert audit_page.status_code == 200
    assert "custom_field" not in audit_page.text or "自定义字段" in audit_page.text


@contextmanager
def _counting(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_pages_read_a_bounded_number_of_queries(
    web: httpx.AsyncClient,
    app: FastAPI,
    make_user: MakeUser,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    mei = await make_user("mei")
    ids = [await _company(sessions, f"测试{i}号有限公司", mei.id) for i in range(12)]
    async with transaction(sessions) as session:
        actor = SYSTEM
        boss = None
        for i in range(6):
            contact = await customer.add_contact(
                session,
                actor=actor,
                customer_id=ids[0],
                data=customer.ContactCreate(name=f"联系人{i}", reports_to_id=boss),
            )
            boss = contact.id
            await follow_up.log(
                session,
                actor=actor,
                customer_id=ids[0],
                data=follow_up.FollowUpCreate(kind="call", summary=f"第{i}次电话"),
            )
        for i in range(5):
            await task.open_task(
                session,
                new=task.NewTask(
                    key=f"t{i}",
                    kind="todo",
                    title=f"待办{i}",
                    assignee_id=mei.id,
                    due_at=utcnow() + timedelta(hours=i),
                ),
            )
    await web_sign_in(web, "mei")
    # The profile: its own reads plus one or two per section (deals, contracts, orders, tickets).
    for path, limit in ((f"/customers/{ids[0]}", 24), ("/customers", 8), ("/tasks", 6)):
        with _counting(app) as statements:
            response = await web.get(path)
        assert response.status_code == 200, path
        assert len(statements) <= limit, (path, len(statements), statements)


async def test_edit_a_customer_with_errors_shown_by_field_in_the_users_language(
    web: httpx.AsyncClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mei = await make_user("mei")
    async with transaction(sessions) as session:
        await custom_field.create(
            session,
            actor=SYSTEM,
            data=custom_field.CustomFieldCreate(
                entity="customer",
                key="budget",
                label="年度预算",
                label_en="Annual budget",
                type="money",
                min_value=0,
            ),
        )
        await custom_field.create(
            session,
            actor=SYSTEM,
            data=custom_field.CustomFieldCreate(
                entity="customer",
                key="products",
                label="关注产品",
                type="multi_select",
                options=["冷链", "仓储", "配送"],
            ),
        )
        await custom_field.create(
            session,
            actor=SYSTEM,
            data=custom_field.CustomFieldCreate(
                entity="customer", key="visit_at", label="拜访时间", type="datetime"
            ),
        )
    customer_id = await _company(sessions, "上海云杉信息科技有限公司", mei.id)
    token = await web_sign_in(web, "mei")
    form = await web.get(f"/customers/{customer_id}/edit")
    assert form.status_code == 200
    assert 'value="上海云杉信息科技有限公司"' in form.text
    base = {
        "csrf_token": token,
        "kind": "company",
        "name": "上海云杉信息科技有限公司",
        "stage": "customer",
        "owner_id": str(mei.id),
    }
    bad = await web.post(
        f"/customers/{customer_id}/edit", data={**base, "phone": "abc", "cf.budget": "-5"}
    )
    assert bad.status_code == 422
    assert "电话：不是有效的电话号码" in bad.text
    assert 'value="abc"' in bad.text
    web.cookies.set("lang", "en")
    english = await web.post(f"/customers/{customer_id}/edit", data={**base, "cf.budget": "x"})
    assert english.status_code == 422
    assert "Annual budget: must be a number" in english.text
    web.cookies.set("lang", "zh-CN")
    saved = await web.post(
        f"/customers/{customer_id}/edit",
        data={
            **base,
            "city": "上海",
            "tags": "重点、华东",
            "cf.budget": "1,234.5",
            "cf.products": ["冷链", "配送"],
            "cf.visit_at": "2026-12-01T09:30",
        },
    )
    assert saved.status_code == 303, saved.text
    async with sessions() as session:
        row = await customer.get(session, actor=SYSTEM, customer_id=customer_id)
        assert (row.city, row.stage, row.tags) == ("上海", "customer", ["华东", "重点"])
        assert row.custom == {
            "budget": "1234.50",
            "products": ["冷链", "配送"],
            "visit_at": "2026-12-01T01:30:00Z",
        }
    profile = await web.get(f"/customers/{customer_id}")
    assert "客户档案已保存" in profile.text
    assert "¥1,234.50" in profile.text and "冷链、配送" in profile.text
    assert "2026-12-01 09:30" in profile.text and "成交客户" in profile.text
    again = await web.get(f"/customers/{customer_id}/edit")
    assert 'value="2026-12-01T09:30"' in again.text
    assert 'value="冷链" checked' in again.text


async def test_contacts_are_added_from_the_profile(
    web: httpx.AsyncClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mei = await make_user("mei")
    customer_id = await _company(sessions, "上海云杉信息科技有限公司", mei.id)
    token = await web_sign_in(web, "mei")
    path = f"/customers/{customer_id}/contacts"
    bad = await web.post(path, data={"csrf_token": token, "name": "张伟", "mobile": "12"})
    assert bad.status_code == 422
    assert "手机：不是有效的电话号码" in bad.text
    made = await web.post(
        path, data={"csrf_token": token, "name": "张伟", "decision_role": "decision_maker"}
    )
    assert made.status_code == 303
    async with sessions() as session:
        (boss,) = await customer.list_contacts(session, actor=SYSTEM, customer_id=customer_id)
    made = await web.post(
        path, data={"csrf_token": token, "name": "王芳", "reports_to_id": str(boss.id)}
    )
    assert made.status_code == 303
    profile = await web.get(f"/customers/{customer_id}")
    assert "联系人已添加" in profile.text and "决策者" in profile.text
    assert profile.text.index("张伟") < profile.text.index("王芳")


async def test_the_inbox_counts_down_and_completes(
    web: httpx.AsyncClient, make_user: MakeUser, sessions: async_sessionmaker[AsyncSession]
) -> None:
    mei = await make_user("mei")
    now = utcnow()
    async with transaction(sessions) as session:
        soon = await task.open_task(
            session,
            new=task.NewTask(
                key="a",
                kind="follow_up.next_contact",
                title="联系 云杉：发送报价单",
                assignee_id=mei.id,
                due_at=now + timedelta(hours=2),
            ),
        )
        await task.open_task(
            session,
            new=task.NewTask(
                key="b",
                kind="todo",
                title="回访 青禾",
                assignee_id=mei.id,
                due_at=now - timedelta(hours=3),
            ),
        )
    token = await web_sign_in(web, "mei")
    inbox = await web.get("/tasks")
    assert "还剩 2 小时" in inbox.text and "已逾期 3 小时" in inbox.text
    assert "下次联系提醒" in inbox.text
    assert inbox.text.index("回访 青禾") < inbox.text.index("联系 云杉")
    done = await web.post(f"/tasks/{soon.id}/complete", data={"csrf_token": token})
    assert done.status_code == 303
    after = await web.get("/tasks")
    assert "待办已完成" in after.text and "联系 云杉" not in after.text
    twice = await web.post(f"/tasks/{soon.id}/complete", data={"csrf_token": token})
    assert twice.status_code == 409
    assert "这个待办已经完成" in twice.text
    missing = await web.post("/tasks/999999/complete", data={"csrf_token": token})
    assert missing.status_code == 404


async def test_bad_list_filters_are_explained_not_a_500(
    web: httpx.AsyncClient, make_user: MakeUser
) -> None:
    await make_user("mei")
    await web_sign_in(web, "mei")
    response = await web.get("/customers", params={"stage": "bogus", "sort": "nope"})
    assert response.status_code == 200
    assert "请从列表中选择" in response.text
