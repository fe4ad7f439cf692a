"""First start: the configured admin, or demo users for every role and a few demo customers."""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

from pydantic import SecretStr
from sqlalchemy import func, select
from stdnum.cn import uscc

from domain import custom_field, customer, follow_up, policy, user
from domain.access import SYSTEM, ApproverGroup, Role
from domain.db import create_engine, session_factory, transaction, utcnow
from domain.settings import Settings

DEMO_USERS: list[tuple[str, str, Role, ApproverGroup | None, str | None]] = [
    # username, display name, role, approver group, team
    ("admin", "系统管理员", Role.admin, None, None),
    ("manager", "王经理", Role.sales_manager, None, "华东销售部"),
    ("sales1", "李销售", Role.sales, None, "华东销售部"),
    ("sales2", "张销售", Role.sales, None, "华东销售部"),
    ("service_manager", "赵主管", Role.service_manager, None, "客服中心"),
    ("service", "陈客服", Role.service, None, "客服中心"),
    ("finance", "刘财务", Role.approver, ApproverGroup.finance, None),
    ("legal", "孙法务", Role.approver, ApproverGroup.legal, None),
    ("director", "周总监", Role.approver, ApproverGroup.director, None),
]

DEMO_COMPANIES = [
    # name, first 17 characters of the credit code, industry, city, province
    ("上海云杉信息科技有限公司", "91310115MA1H7XK2", "软件和信息技术服务", "上海", "上海"),
    ("杭州青禾食品股份有限公司", "91330106MA2B3CD4", "食品制造", "杭州", "浙江"),
    ("苏州恒川精密机械有限公司", "91320505MA1N5PQ6", "通用设备制造", "苏州", "江苏"),
]


def _credit_code(first16: str) -> str:
    body = (first16 + "0")[:17]
    return body + uscc.calc_check_digit(body)


async def seed_if_empty(settings: Settings) -> str:
    """Create the first users (and demo data) when there are none; say how to sign in."""
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    logins_file = settings.var_dir / "demo-logins.txt"
    try:
        async with transaction(sessions) as session:
            if await session.scalar(select(func.count(user.User.id))):
                hint = f" (demo logins: {logins_file})" if logins_file.exists() else ""
                return f"Using the existing database{hint}."
            if settings.admin_username and settings.admin_password:
                await user.create(
                    session,
                    actor=SYSTEM,
                    data=user.UserCreate(
                        username=settings.admin_username,
                        display_name="Administrator",
                        password=settings.admin_password,
                        role=Role.admin,
                    ),
                )
                return f"Created the admin {settings.admin_username}."
            logins = await _demo(session)
        lines = [f"  {name:<16} {password}" for name, password in logins]
        text = "Demo logins (username, password):\n" + "\n".join(lines) + "\n"
        logins_file.parent.mkdir(parents=True, exist_ok=True)
        logins_file.write_text(text)
        logins_file.chmod(0o600)
        return text + f"Saved to {logins_file}."
    finally:
        await engine.dispose()


async def _demo(session) -> list[tuple[str, str]]:
    teams: dict[str, int] = {}
    users: dict[str, user.User] = {}
    logins = []
    for username, display_name, role, group, team_name in DEMO_USERS:
        if team_name and team_name not in teams:
            teams[team_name] = (
                await user.create_team(session, actor=SYSTEM, data=user.TeamCreate(name=team_name))
            ).id
        password = secrets.token_urlsafe(9)
        users[username] = await user.create(
            session,
            actor=SYSTEM,
            data=user.UserCreate(
                username=username,
                display_name=display_name,
                password=SecretStr(password),
                role=role,
                approver_group=group,
                team_id=teams.get(team_name or ""),
            ),
        )
        logins.append((username, password))
    await user.update_team(
        session,
        actor=SYSTEM,
        team_id=teams["华东销售部"],
        data=user.TeamUpdate(manager_id=users["manager"].id),
    )
    await user.update_team(
        session,
        actor=SYSTEM,
        team_id=teams["客服中心"],
        data=user.TeamUpdate(manager_id=users["service_manager"].id),
    )

    await policy.publish(session, actor=SYSTEM, kind=policy.PolicyKind.assignment, data={
        "default": {"name": "华东销售部轮询", "target": {"team_id": teams["华东销售部"]}},
    })
    await policy.publish(session, actor=SYSTEM, kind=policy.PolicyKind.dispatch, data={
        "default": {"name": "客服中心轮询", "team_id": teams["客服中心"]},
    })
    await custom_field.create(
        session,
        actor=SYSTEM,
        data=custom_field.CustomFieldCreate(
            entity=custom_field.FieldEntity.customer,
            key="tier",
            label="客户等级",
            label_en="Tier",
            type=custom_field.FieldType.single_select,
            options=["A", "B", "C"],
        ),
    )
    await custom_field.create(
        session,
        actor=SYSTEM,
        data=custom_field.CustomFieldCreate(
            entity=custom_field.FieldEntity.customer,
            key="budget",
            label="年度预算",
            label_en="Annual budget",
            type=custom_field.FieldType.money,
            min_value=Decimal(0),
        ),
    )
    owners = [users["sales1"], users["sales2"], users["sales1"]]
    for (name, code, industry, city, province), owner, tier in zip(
        DEMO_COMPANIES, owners, "ABC", strict=True
    ):
        company = await customer.create(
            session,
            actor=SYSTEM,
            data=customer.CustomerCreate(
                kind=customer.Kind.company,
                name=name,
                credit_code=_credit_code(code),
                industry=industry,
                city=city,
                province=province,
                source="展会",
                owner_id=owner.id,
                stage=customer.Stage.customer,
                tags=["重点客户"],
                custom={"tier": tier, "budget": "500000"},
            ),
        )
        boss = await customer.add_contact(
            session,
            actor=SYSTEM,
            customer_id=company.id,
            data=customer.ContactCreate(
                name="钱总",
                title="总经理",
                decision_role=customer.DecisionRole.decision_maker,
            ),
        )
        await customer.add_contact(
            session,
            actor=SYSTEM,
            customer_id=company.id,
            data=customer.ContactCreate(
                name="吴工",
                title="采购主管",
                reports_to_id=boss.id,
                decision_role=customer.DecisionRole.influencer,
            ),
        )
        await follow_up.log(
            session,
            actor=SYSTEM,
            customer_id=company.id,
            data=follow_up.FollowUpCreate(
                kind=follow_up.FollowUpKind.visit,
                summary="上门拜访，介绍产品方案",
                at=utcnow() - timedelta(days=3),
                next_step="发送报价",
            ),
        )
    await customer.create(
        session,
        actor=SYSTEM,
        data=customer.CustomerCreate(
            kind=customer.Kind.person,
            name="林晓",
            phone="13800138000",
            city="南京",
            province="江苏",
            source="官网",
            owner_id=users["sales2"].id,
            member_level="金卡",
        ),
    )
    return logins
