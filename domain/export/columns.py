"""What an exported sheet of each list holds: its columns, headed in Chinese or English.

Customer headers are the names the import recognises, so an exported sheet can be corrected
and imported back. Enum values are written by their label in the caller's language, owners by
name, customers of deals and tickets by name; custom fields follow the built-in columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from domain.custom_field import CustomField, FieldType
from domain.export import cells


class Entity(StrEnum):
    customers = "customers"
    leads = "leads"
    deals = "deals"
    tickets = "tickets"


@dataclass
class Lookups:
    """Names and labels the cells need, loaded once per export (customers once per batch)."""

    choice: Callable[[str, Any], str]
    """The label of an enum value in the caller's language: choice("stage", "lead")."""
    users: dict[int, str] = field(default_factory=dict)
    teams: dict[int, str] = field(default_factory=dict)
    customers: dict[int, str] = field(default_factory=dict)
    stages: dict[tuple[str, str], str] = field(default_factory=dict)
    """Deals: (pipeline, stage key) → the stage's name."""


Value = Callable[[Any, Lookups], Any]


@dataclass(frozen=True)
class Column:
    zh: str
    en: str
    value: Value

    def header(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


def attr(name: str) -> Value:
    return lambda row, _lookups: getattr(row, name)


def choice(name: str, group: str) -> Value:
    def label(row: Any, lookups: Lookups) -> str | None:
        value = getattr(row, name)
        return None if value is None else lookups.choice(group, value)

    return label


def user(name: str) -> Value:
    return lambda row, lookups: lookups.users.get(getattr(row, name) or 0)


def phone(name: str) -> Value:
    return lambda row, _lookups: cells.phone(getattr(row, name))


def yes_no(name: str) -> Value:
    return lambda row, lookups: lookups.choice("common", "yes" if getattr(row, name) else "no")


def customer(row: Any, lookups: Lookups) -> str | None:
    return lookups.customers.get(row.customer_id or 0)


def deal_stage(row: Any, lookups: Lookups) -> str:
    return lookups.stages.get((row.pipeline, row.stage), row.stage)


CUSTOMER = (
    Column("编号", "ID", attr("id")),
    Column("客户名称", "Name", attr("name")),
    Column("客户类型", "Kind", choice("kind", "kind")),
    Column("统一社会信用代码", "Credit code", attr("credit_code")),
    Column("电话", "Phone", phone("phone")),
    Column("邮箱", "Email", attr("email")),
    Column("微信", "WeChat ID", attr("wechat_id")),
    Column("行业", "Industry", attr("industry")),
    Column("规模", "Size", attr("size")),
    Column("省份", "Province", attr("province")),
    Column("城市", "City", attr("city")),
    Column("注册地址", "Registered address", attr("registered_address")),
    Column("网站", "Website", attr("website")),
    Column("性别", "Gender", choice("gender", "gender")),
    Column("生日", "Birthday", attr("birthday")),
    Column("会员等级", "Member level", attr("member_level")),
    Column("来源", "Source", attr("source")),
    Column("负责人", "Owner", user("owner_id")),
    Column("阶段", "Stage", choice("stage", "stage")),
    Column("标签", "Tags", attr("tags")),
    Column("备注", "Notes", attr("notes")),
    Column("发票抬头", "Invoice title", attr("invoice_title")),
    Column("购买次数", "Purchases", attr("purchase_count")),
    Column("累计金额", "Total amount", attr("total_amount")),
    Column("首次购买", "First purchase", attr("first_purchase_on")),
    Column("最近购买", "Last purchase", attr("last_purchase_on")),
    Column("创建时间", "Created at", attr("created_at")),
    Column("更新时间", "Updated at", attr("updated_at")),
)

LEAD = (
    Column("编号", "ID", attr("id")),
    Column("状态", "Status", choice("status", "lead_status")),
    Column("姓名", "Contact name", attr("contact_name")),
    Column("公司", "Company", attr("company")),
    Column("电话", "Phone", phone("phone")),
    Column("邮箱", "Email", attr("email")),
    Column("微信", "WeChat ID", attr("wechat_id")),
    Column("统一社会信用代码", "Credit code", attr("credit_code")),
    Column("省份", "Province", attr("province")),
    Column("城市", "City", attr("city")),
    Column("行业", "Industry", attr("industry")),
    Column("意向产品", "Product interest", attr("product_interest")),
    Column("来源", "Source", attr("source")),
    Column("营销活动", "Campaign", attr("campaign")),
    Column("优先级", "Priority", choice("priority", "lead_priority")),
    Column("评分", "Score", attr("score")),
    Column("负责人", "Owner", user("owner_id")),
    Column("客户", "Customer", customer),
    Column("时限", "SLA due", attr("sla_due_at")),
    Column("首次联系", "First contacted", attr("first_contacted_at")),
    Column("最近跟进", "Last activity", attr("last_activity_at")),
    Column("创建时间", "Created at", attr("created_at")),
    Column("留言", "Message", attr("message")),
)

DEAL = (
    Column("编号", "ID", attr("id")),
    Column("商机名称", "Deal", attr("name")),
    Column("客户", "Customer", customer),
    Column("销售漏斗", "Pipeline", attr("pipeline")),
    Column("阶段", "Stage", deal_stage),
    Column("状态", "Status", choice("status", "deal_status")),
    Column("金额", "Amount", attr("amount")),
    Column("预算", "Budget", attr("budget")),
    Column("币种", "Currency", attr("currency")),
    Column("赢单概率", "Probability", attr("probability")),
    Column("预计成交日期", "Expected close", attr("expected_close_on")),
    Column("负责人", "Owner", user("owner_id")),
    Column("下一步", "Next step", attr("next_step")),
    Column("输单原因", "Lost reason", attr("lost_reason")),
    Column("创建时间", "Created at", attr("created_at")),
    Column("结束时间", "Closed at", attr("closed_at")),
)

TICKET = (
    Column("编号", "ID", attr("id")),
    Column("主题", "Subject", attr("subject")),
    Column("状态", "Status", choice("status", "ticket_status")),
    Column("优先级", "Priority", choice("priority", "ticket_priority")),
    Column("类型", "Type", attr("type")),
    Column("渠道", "Channel", choice("channel", "ticket_channel")),
    Column("客户", "Customer", customer),
    Column("提出人", "Requester", attr("requester_name")),
    Column("提出人邮箱", "Requester email", attr("requester_email")),
    Column("提出人电话", "Requester phone", phone("requester_phone")),
    Column("团队", "Team", lambda row, lookups: lookups.teams.get(row.team_id or 0)),
    Column("处理人", "Assignee", user("assignee_id")),
    Column("时限", "SLA due", attr("sla_due_at")),
    Column("已超时", "SLA breached", yes_no("sla_breached")),
    Column("首次响应", "First response", attr("first_response_at")),
    Column("解决时间", "Resolved at", attr("resolved_at")),
    Column("创建时间", "Created at", attr("created_at")),
)

COLUMNS = {
    Entity.customers: CUSTOMER,
    Entity.leads: LEAD,
    Entity.deals: DEAL,
    Entity.tickets: TICKET,
}
FIELD_ENTITY = {
    Entity.customers: "customer",
    Entity.leads: "lead",
    Entity.deals: "deal",
    Entity.tickets: "ticket",
}
"""The custom-field entity whose fields each export carries."""
TITLES = {
    Entity.customers: ("客户", "Customers"),
    Entity.leads: ("线索", "Leads"),
    Entity.deals: ("商机", "Deals"),
    Entity.tickets: ("工单", "Tickets"),
}


def custom_column(definition: CustomField) -> Column:
    """A custom field as a column headed by its label; values as typed, options as labelled."""
    type_, key = FieldType(definition.type), definition.key

    def value(row: Any, lookups: Lookups) -> Any:
        raw = (row.custom or {}).get(key)
        if raw is None:
            return None
        if type_ in (FieldType.number, FieldType.money):
            return Decimal(str(raw))
        if type_ is FieldType.date:
            return date.fromisoformat(raw)
        if type_ is FieldType.datetime:
            return datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if type_ is FieldType.boolean:
            return lookups.choice("common", "yes" if raw else "no")
        if type_ is FieldType.user:
            return lookups.users.get(raw, str(raw))
        if type_ is FieldType.phone:
            return cells.phone(raw)
        return raw

    return Column(definition.label, definition.label_en or definition.label, value)
