"""What each import entity's columns are called, in Chinese and English, and how headers map.

A header matches a field when, folded (NFKC, case, spaces and punctuation removed), it equals
the field's key, its labels or one of its synonyms. Custom fields match by key and labels.
The mapping a user adjusts is {header: field key}; a field key of "" leaves the column out.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from domain.custom_field import CustomField
from domain.errors import Invalid

CUSTOM_PREFIX = "custom."


class Entity(StrEnum):
    customers = "customers"
    contacts = "contacts"
    leads = "leads"
    follow_ups = "follow_ups"
    purchases = "purchases"


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    synonyms: tuple[str, ...] = ()
    example: str = ""
    options: tuple[str, ...] = ()
    """Allowed values, for a template's drop-down list."""
    required: bool = False


CUSTOMER_COLUMNS: tuple[Column, ...] = (
    Column("name", "客户名称", "Name", ("名称", "公司名称", "企业名称", "单位名称", "客户", "公司",
                                        "姓名", "company", "companyname", "customer",
                                        "customername"), "杭州青禾食品有限公司", required=True),
    Column("kind", "客户类型", "Kind", ("类型", "type", "customertype"), "企业",
           ("企业", "个人")),
    Column("credit_code", "统一社会信用代码", "Credit code", ("信用代码", "社会信用代码", "税号",
                                                           "纳税人识别号", "uscc", "taxid"),
           "91330106MA2B0C0A10"),
    Column("phone", "电话", "Phone", ("手机", "手机号", "手机号码", "联系电话", "电话号码", "座机",
                                      "mobile", "tel", "telephone", "cellphone"), "13800138000"),
    Column("email", "邮箱", "Email", ("电子邮箱", "电子邮件", "邮件", "e-mail", "mail"),
           "info@qinghe.cn"),
    Column("industry", "行业", "Industry", ("所属行业",), "食品"),
    Column("size", "规模", "Size", ("企业规模", "人数", "员工人数", "companysize"), "50-199",
           ("1-9", "10-49", "50-199", "200-999", "1000+")),
    Column("province", "省份", "Province", ("省", "所在省份"), "浙江"),
    Column("city", "城市", "City", ("市", "所在城市"), "杭州"),
    Column("registered_address", "注册地址", "Registered address", ("地址", "公司地址", "address"),
           "杭州市西湖区文三路 1 号"),
    Column("website", "网站", "Website", ("官网", "网址", "url", "web"), "www.qinghe.cn"),
    Column("gender", "性别", "Gender", ("sex",), "", ("男", "女", "其他")),
    Column("birthday", "生日", "Birthday", ("出生日期", "birthdate", "dateofbirth"), ""),
    Column("wechat_id", "微信", "WeChat ID", ("微信号", "wechat", "weixin"), ""),
    Column("member_level", "会员等级", "Member level", ("会员级别", "等级", "level"), ""),
    Column("source", "来源", "Source", ("客户来源", "渠道", "channel"), "展会"),
    Column("owner", "负责人", "Owner", ("归属销售", "销售", "所属销售", "跟进人", "业务员",
                                       "salesrep", "owner"), "sales1"),
    Column("stage", "阶段", "Stage", ("客户阶段", "状态", "status"), "潜在客户",
           ("线索", "潜在客户", "成交客户", "流失")),
    Column("tags", "标签", "Tags", ("tag", "客户标签"), "重点,华东"),
    Column("notes", "备注", "Notes", ("说明", "note", "remark", "remarks", "comment"), ""),
    Column("invoice_title", "发票抬头", "Invoice title", ("开票抬头", "开票名称"), ""),
    Column("billing_address", "开票地址", "Billing address", (), ""),
    Column("billing_phone", "开票电话", "Billing phone", (), ""),
    Column("bank_name", "开户银行", "Bank", ("开户行", "银行", "bankname"), ""),
    Column("bank_account", "银行账号", "Bank account", ("账号", "银行账户", "accountnumber"), ""),
)

CONTACT_COLUMNS: tuple[Column, ...] = (
    Column("customer", "客户名称", "Customer", ("公司名称", "企业名称", "公司", "客户", "单位",
                                             "company", "companyname", "customername"),
           "杭州青禾食品有限公司", required=True),
    Column("customer_credit_code", "客户信用代码", "Customer credit code",
           ("统一社会信用代码", "信用代码", "税号", "creditcode", "uscc"), ""),
    Column("name", "联系人", "Name", ("姓名", "联系人姓名", "contact", "contactname", "名字"),
           "王芳", required=True),
    Column("title", "职位", "Title", ("职务", "岗位", "jobtitle", "position"), "采购经理"),
    Column("department", "部门", "Department", ("dept",), "采购部"),
    Column("mobile", "手机", "Mobile", ("手机号", "手机号码", "移动电话", "cellphone", "cell"),
           "13900139000"),
    Column("phone", "电话", "Phone", ("座机", "办公电话", "固定电话", "tel", "telephone"), ""),
    Column("email", "邮箱", "Email", ("电子邮箱", "电子邮件", "邮件", "e-mail", "mail"), ""),
    Column("wechat_id", "微信", "WeChat ID", ("微信号", "wechat", "weixin"), ""),
    Column("birthday", "生日", "Birthday", ("出生日期", "birthdate"), ""),
    Column("decision_role", "决策角色", "Decision role", ("角色", "role", "决策链角色"), "决策者",
           ("决策者", "影响者", "使用者", "把关者")),
)

LEAD_COLUMNS: tuple[Column, ...] = (
    Column("contact_name", "联系人", "Contact name", ("姓名", "联系人姓名", "名字", "name",
                                                     "contact"), "王芳"),
    Column("company", "公司名称", "Company", ("公司", "企业名称", "单位", "客户名称",
                                           "companyname"), "杭州青禾食品有限公司"),
    Column("phone", "手机", "Phone", ("手机号", "手机号码", "电话", "联系电话", "mobile", "tel",
                                      "telephone"), "13900139000"),
    Column("email", "邮箱", "Email", ("电子邮箱", "电子邮件", "邮件", "e-mail", "mail"), ""),
    Column("wechat_id", "微信", "WeChat ID", ("微信号", "wechat", "weixin"), ""),
    Column("credit_code", "统一社会信用代码", "Credit code", ("信用代码", "税号", "uscc"), ""),
    Column("province", "省份", "Province", ("省",), "浙江"),
    Column("city", "城市", "City", ("市",), "杭州"),
    Column("industry", "行业", "Industry", ("所属行业",), "食品"),
    Column("product_interest", "意向产品", "Product interest", ("产品", "感兴趣的产品",
                                                            "product"), "冷链仓储"),
    Column("source", "来源", "Source", ("线索来源", "渠道", "channel"), "展会"),
    Column("campaign", "营销活动", "Campaign", ("活动",), ""),
    Column("priority", "优先级", "Priority", ("紧急程度",), "普通", ("高", "普通", "低")),
    Column("message", "留言", "Message", ("需求", "备注", "说明", "notes", "remark"),
           "想了解冷链仓储报价"),
    Column("status", "线索状态", "Status", ("状态",), "新线索", ("新线索", "无效")),
    Column("disqualify_reason", "无效原因", "Disqualify reason", ("原因", "reason"), ""),
)

FOLLOW_UP_COLUMNS: tuple[Column, ...] = (
    Column("customer", "客户名称", "Customer", ("公司名称", "客户", "公司", "姓名", "company",
                                             "customername"), "杭州青禾食品有限公司"),
    Column("customer_credit_code", "客户信用代码", "Customer credit code",
           ("统一社会信用代码", "信用代码", "税号", "creditcode", "uscc"), ""),
    Column("customer_phone", "客户电话", "Customer phone", ("电话", "手机", "手机号", "phone",
                                                        "mobile"), ""),
    Column("at", "跟进时间", "Date", ("日期", "时间", "跟进日期", "date", "time", "when"),
           "2024-03-05 10:30", required=True),
    Column("kind", "跟进方式", "Kind", ("方式", "类型", "type", "channel"), "电话",
           ("电话", "拜访", "会议", "邮件", "微信", "备注"), required=True),
    Column("summary", "跟进内容", "Summary", ("内容", "记录", "摘要", "content", "note", "notes"),
           "电话沟通年度采购计划", required=True),
    Column("author", "跟进人", "By", ("记录人", "销售", "负责人", "author", "owner", "user"), ""),
)

PURCHASE_COLUMNS: tuple[Column, ...] = (
    Column("customer", "客户名称", "Customer", ("公司名称", "客户", "公司", "姓名", "company",
                                             "customername"), "杭州青禾食品有限公司"),
    Column("customer_credit_code", "客户信用代码", "Customer credit code",
           ("统一社会信用代码", "信用代码", "税号", "creditcode", "uscc"), ""),
    Column("customer_phone", "客户电话", "Customer phone", ("电话", "手机", "手机号", "phone",
                                                        "mobile"), ""),
    Column("purchased_on", "交易日期", "Date", ("日期", "下单日期", "购买日期", "订单日期",
                                            "date", "orderdate"), "2024-03-05", required=True),
    Column("amount", "金额", "Amount", ("交易金额", "订单金额", "实付金额", "total", "price"),
           "12800.00", required=True),
    Column("product", "产品", "Product", ("商品", "产品名称", "商品名称", "item"),
           "冷链仓储年服务"),
    Column("order_number", "订单号", "Order number", ("订单编号", "单号", "order", "orderno",
                                                  "ordernumber"), "SO-2024-0001"),
)

COLUMNS: dict[Entity, tuple[Column, ...]] = {
    Entity.customers: CUSTOMER_COLUMNS,
    Entity.contacts: CONTACT_COLUMNS,
    Entity.leads: LEAD_COLUMNS,
    Entity.follow_ups: FOLLOW_UP_COLUMNS,
    Entity.purchases: PURCHASE_COLUMNS,
}
FIELD_ENTITY = {Entity.customers: "customer", Entity.contacts: "contact", Entity.leads: "lead"}
"""The custom-field entity whose fields an import entity carries; history rows carry none."""
HISTORY = frozenset({Entity.follow_ups, Entity.purchases})
"""Rows of what happened: they belong to an existing customer and, once stored, never change."""


def fold(header: str) -> str:
    """Headers compare folded: "手机 号码", "Mobile" and "MOBILE " are one header each."""
    s = unicodedata.normalize("NFKC", str(header)).casefold()
    return re.sub(r"[\s_\-.:：/()（）*＊]+", "", s)


def columns_of(entity: Entity, custom: list[CustomField]) -> list[Column]:
    """Built-in columns, then the entity's active custom fields (in form order)."""
    extra = [
        Column(
            f"{CUSTOM_PREFIX}{d.key}",
            d.label,
            d.label_en or d.key,
            (d.key,),
            options=tuple(d.options),
            required=d.required,
        )
        for d in custom
        if d.retired_at is None
    ]
    return [*COLUMNS[entity], *extra]


def _names(column: Column) -> list[str]:
    return [fold(n) for n in (column.key, column.zh, column.en, *column.synonyms)]


def suggest(headers: list[str], columns: list[Column]) -> dict[str, str]:
    """{header: field key} for every header that names a field; each field taken once, by the
    first header that names it (exact label or key before synonyms)."""
    lookup: dict[str, str] = {}
    for rank in (0, 1):
        for column in columns:
            names = _names(column)
            for name in names[:3] if rank == 0 else names[3:]:
                lookup.setdefault(name, column.key)
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    for header in headers:
        key = lookup.get(fold(header))
        if key and key not in taken and header not in mapping:
            mapping[header] = key
            taken.add(key)
    return mapping


def check_mapping(mapping: dict[str, str], headers: list[str], columns: list[Column]) -> None:
    """A mapping the user sent: known headers, known fields, each field from one column, and
    the required fields present."""
    known = {c.key for c in columns}
    seen: dict[str, str] = {}
    for header, key in mapping.items():
        if header not in headers:
            raise Invalid(f"the sheet has no column {header!r}", field=f"mapping.{header}")
        if key == "":
            continue
        if key not in known:
            raise Invalid(f"{key!r} is not a field of this import", field=f"mapping.{header}")
        if key in seen:
            raise Invalid(f"{key} is already taken by column {seen[key]!r}",
                          field=f"mapping.{header}")
        seen[key] = header
    for column in columns:
        if column.required and not column.key.startswith(CUSTOM_PREFIX) and column.key not in seen:
            raise Invalid(f"map a column to the required field {column.key} ({column.zh})",
                          field="mapping")
