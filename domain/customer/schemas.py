"""Customer and contact schemas: what callers send (Create/Update) and what they read back."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from domain.customer.models import DecisionRole, Gender, Kind, Size, Stage
from domain.schema import DbId, Input, Patch

Short = Annotated[str, Field(max_length=100)]
Tag = Annotated[str, Field(min_length=1, max_length=40)]

COMPANY_ONLY = ("credit_code", "industry", "size", "registered_address", "website", "parent_id")
PERSON_ONLY = ("gender", "birthday", "member_level")


class _CustomerFields(Input):
    credit_code: Annotated[str, Field(max_length=40)] | None = None
    industry: Short | None = None
    size: Size | None = None
    registered_address: Annotated[str, Field(max_length=300)] | None = None
    website: Annotated[str, Field(max_length=300)] | None = None
    parent_id: DbId | None = None

    gender: Gender | None = None
    birthday: date | None = None
    wechat_id: Annotated[str, Field(max_length=40)] | None = None
    member_level: Annotated[str, Field(max_length=40)] | None = None

    phone: Annotated[str, Field(max_length=40)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    province: Annotated[str, Field(max_length=40)] | None = None
    city: Annotated[str, Field(max_length=40)] | None = None
    source: Annotated[str, Field(max_length=60)] | None = None
    referrer_id: DbId | None = None
    owner_id: DbId | None = None
    service_team_id: DbId | None = None
    notes: Annotated[str, Field(max_length=10_000)] | None = None
    tags: Annotated[list[Tag], Field(max_length=30)] | None = None
    custom: dict[str, Any] | None = None

    invoice_title: Annotated[str, Field(max_length=200)] | None = None
    """Billing details (开票信息), pushed to the ERP; the tax id is `credit_code`."""
    billing_address: Annotated[str, Field(max_length=300)] | None = None
    billing_phone: Annotated[str, Field(max_length=40)] | None = None
    bank_name: Short | None = None
    bank_account: Annotated[str, Field(max_length=40)] | None = None

    @field_validator("birthday")
    @classmethod
    def _not_future(cls, value: date | None) -> date | None:
        if value is not None and not date(1900, 1, 1) <= value <= date(2100, 1, 1):
            raise ValueError("birthday must be between 1900 and 2100")
        return value


class CustomerCreate(_CustomerFields):
    kind: Kind
    name: Annotated[str, Field(min_length=1, max_length=200)]
    stage: Stage = Stage.prospect


class CustomerUpdate(_CustomerFields, Patch):
    """Only the fields sent change; send null to clear one. The kind never changes."""

    not_null = frozenset({"name", "stage", "tags", "custom"})

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    stage: Stage | None = None


class CustomerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: Kind
    name: str
    credit_code: str | None
    industry: str | None
    size: Size | None
    registered_address: str | None
    website: str | None
    parent_id: int | None
    gender: Gender | None
    birthday: date | None
    wechat_id: str | None
    member_level: str | None
    phone: str | None
    email: str | None
    province: str | None
    city: str | None
    source: str | None
    referrer_id: int | None
    owner_id: int | None
    service_team_id: int | None
    stage: Stage
    notes: str | None
    tags: list[str]
    custom: dict[str, Any]
    invoice_title: str | None
    billing_address: str | None
    billing_phone: str | None
    bank_name: str | None
    bank_account: str | None
    first_purchase_on: date | None
    last_purchase_on: date | None
    purchase_count: int
    total_amount: Decimal
    average_order_value: Decimal | None
    currency: str
    created_at: datetime
    updated_at: datetime


SortKey = Literal[
    "name",
    "-name",
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "last_purchase_on",
    "-last_purchase_on",
    "total_amount",
    "-total_amount",
]


class CustomerQuery(BaseModel):
    """List filters; every one is optional and they combine with AND.

    Custom fields filter as `custom={key: value}` (query string `cf.<key>=value`).
    """

    q: Annotated[str, Field(max_length=200)] | None = None
    kind: Kind | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    credit_code: Annotated[str, Field(max_length=40)] | None = None
    tag: list[Tag] = []
    owner_id: DbId | None = None
    stage: Stage | None = None
    province: Annotated[str, Field(max_length=40)] | None = None
    city: Annotated[str, Field(max_length=40)] | None = None
    industry: Short | None = None
    source: Annotated[str, Field(max_length=60)] | None = None
    parent_id: DbId | None = None
    custom: dict[str, str] = {}
    sort: SortKey = "-updated_at"
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    size: Annotated[int, Field(ge=1, le=200)] = 20


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    """How many match; when `total_exact` is false, a lower bound (searches stop counting at
    10,000)."""
    page: int
    size: int
    total_exact: bool = True


class DuplicateMatch(BaseModel):
    customer_id: int
    field: str
    name: str


class ContactCreate(Input):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    title: Short | None = None
    department: Short | None = None
    mobile: Annotated[str, Field(max_length=40)] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    wechat_id: Annotated[str, Field(max_length=40)] | None = None
    birthday: date | None = None
    reports_to_id: DbId | None = None
    decision_role: DecisionRole | None = None
    custom: dict[str, Any] | None = None


class ContactUpdate(Patch):
    not_null = frozenset({"name", "custom"})

    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    title: Short | None = None
    department: Short | None = None
    mobile: Annotated[str, Field(max_length=40)] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    wechat_id: Annotated[str, Field(max_length=40)] | None = None
    birthday: date | None = None
    reports_to_id: DbId | None = None
    decision_role: DecisionRole | None = None
    custom: dict[str, Any] | None = None


class ContactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    customer_id: int
    name: str
    title: str | None
    department: str | None
    mobile: str | None
    phone: str | None
    email: str | None
    wechat_id: str | None
    birthday: date | None
    reports_to_id: int | None
    decision_role: DecisionRole | None
    custom: dict[str, Any]
    created_at: datetime
    updated_at: datetime
