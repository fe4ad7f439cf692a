"""One sheet row into a record ready to write, by the rules every write applies.

A row is first put in the shape the API receives (cells converted, owners found by login or
name), then judged by the entity's own schema (CustomerCreate, ContactCreate), its normalisers
and the custom-field rules — the same functions a form or the API calls, so an import can
never accept what a normal write refuses. Every problem of a row is reported, not just the
first, each with the column it came from.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, tzinfo
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import custom_field, normalize, policy
from domain.custom_field import CustomField, FieldType
from domain.customer import ContactCreate, CustomerCreate, Kind
from domain.customer.schemas import PERSON_ONLY
from domain.customer.service import contact_normalised, normalised
from domain.errors import Invalid
from domain.imports import cells
from domain.imports.columns import CUSTOM_PREFIX, FIELD_ENTITY, Entity
from domain.imports.reading import Cell, is_blank
from domain.lead.rules import LeadPolicy
from domain.policy import PolicyKind
from domain.user import User

MAX_VALUE = 500
"""A problem quotes at most this much of the cell."""


@dataclass(frozen=True)
class Problem:
    row: int
    column: str | None
    value: str | None
    message: str


@dataclass
class Checked:
    """A row judged: its record (None when invalid), its dedupe keys, its problems."""

    row: int
    record: dict[str, Any] | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    tags: list[str] | None = None
    keys: list[tuple[str, str]] = field(default_factory=list)
    """(key, normalised value), strongest first: what makes two rows the same record."""
    customer_ref: tuple[str, str] | None = None
    """Contacts: ("credit_code" | "name", value) naming the customer they belong to."""
    problems: list[Problem] = field(default_factory=list)
    no_similar_name: bool = False
    """The dry run matched it to nothing, not even a similar company name."""

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass
class Context:
    """What checking needs besides the row, loaded once per pass over the file."""

    entity: Entity
    columns: dict[str, str]
    """{field key: header it comes from}."""
    definitions: list[CustomField]
    users: dict[str, int | None]
    """Folded login or display name → active user id; None where the name is ambiguous."""
    zone: tzinfo = UTC
    """Where a time written without an offset was (the configured business time zone)."""
    disqualify_reasons: tuple[str, ...] = ()
    """Leads: the reasons the lead policy allows for closing one."""

    @property
    def custom_entity(self) -> str:
        return FIELD_ENTITY[self.entity]

    @cached_property
    def choices(self) -> dict[str, dict[str, str]]:
        return cells.choices_of(self.entity.value)

    def header(self, key: str | None) -> str | None:
        return self.columns.get(key or "")


def fold_name(value: str) -> str:
    return "".join(unicodedata.normalize("NFKC", value).casefold().split())


async def load_users(session: AsyncSession) -> dict[str, int | None]:
    """Owners are written by login (sales1) or by name (李销售); a name two users share is
    ambiguous and must be given as a login."""
    rows = (
        await session.execute(
            select(User.id, User.username, User.display_name).where(User.active.is_(True))
        )
    ).all()
    users: dict[str, int | None] = {fold_name(username): user_id for user_id, username, _ in rows}
    logins = set(users)
    for user_id, _username, display in rows:
        key = fold_name(display)
        if key not in logins:
            users[key] = None if users.get(key, user_id) != user_id else user_id
    return users


async def definitions(
    session: AsyncSession, entity: Entity, *, include_retired: bool = False
) -> list[CustomField]:
    """The custom fields an import entity's rows carry (history rows carry none)."""
    if entity not in FIELD_ENTITY:
        return []
    return await custom_field.list_fields(
        session, entity=FIELD_ENTITY[entity], include_retired=include_retired
    )


async def context(
    session: AsyncSession, *, entity: Entity, mapping: dict[str, str], zone: tzinfo = UTC
) -> Context:
    columns = {key: header for header, key in mapping.items() if key}
    reasons: tuple[str, ...] = ()
    if entity is Entity.leads:
        _version, rules = await policy.current(session, kind=PolicyKind.lead)
        assert isinstance(rules, LeadPolicy)
        reasons = rules.disqualify_reasons
    return Context(
        entity, columns, await definitions(session, entity, include_retired=True),
        await load_users(session), zone, reasons,
    )


def quoted(cell: Cell) -> str | None:
    value = cells.text(cell)
    return None if value is None else value[:MAX_VALUE]


def _schema_problems(
    ctx: Context, row: int, error: ValidationError, raw: dict[str, Cell]
) -> list[Problem]:
    out = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        key = loc[0] if loc else None
        if key in ("owner_id", "author_id"):
            key = key.removesuffix("_id")
        elif key == "custom" and len(loc) > 1:
            key = f"{CUSTOM_PREFIX}{loc[1]}"
        message = item["msg"].removeprefix("Value error, ")
        out.append(Problem(row, ctx.header(key), quoted(raw.get(key or "")), message))
    return out


def problem_of(ctx: Context, row: int, exc: Invalid, raw: dict[str, Cell]) -> Problem:
    key = exc.field
    return Problem(row, ctx.header(key), quoted(raw.get(key or "")), exc.message)


def user_id(ctx: Context, value: str, *, field: str = "owner") -> int:
    """A user named in a cell by login or display name."""
    key = fold_name(value)
    if key not in ctx.users:
        raise Invalid(f"no active user with the login or name {value}", field=field)
    found = ctx.users[key]
    if found is None:
        raise Invalid(f"several users are called {value}: give the login", field=field)
    return found


def _custom_value(definition: CustomField, cell: Cell) -> Any:
    """The cell as the custom field's API input: dates and lists converted, numbers as they are."""
    type_ = FieldType(definition.type)
    where = f"{CUSTOM_PREFIX}{definition.key}"
    if type_ is FieldType.date:
        return cells.to_date(cell, field=where)
    if type_ is FieldType.multi_select:
        return cells.tags(cells.text(cell) or "")
    if type_ in (FieldType.number, FieldType.money) and isinstance(cell, int | float):
        return cell
    if type_ is FieldType.boolean and isinstance(cell, bool):
        return cell
    if type_ is FieldType.user:
        text = cells.text(cell) or ""
        return int(text) if text.isdigit() else text
    return cells.text(cell)


def row_payload(
    ctx: Context, row: int, raw: dict[str, Cell], problems: list[Problem]
) -> dict[str, Any]:
    """The row as the API would have received it; cells that cannot even be read are problems."""
    by_key = {d.key: d for d in ctx.definitions}
    payload: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    for key, cell in raw.items():
        if is_blank(cell):
            continue
        try:
            if key.startswith(CUSTOM_PREFIX):
                custom[key.removeprefix(CUSTOM_PREFIX)] = _custom_value(
                    by_key[key.removeprefix(CUSTOM_PREFIX)], cell
                )
                continue
            text = cells.text(cell)
            assert text is not None
            if key == "owner":
                payload["owner_id"] = user_id(ctx, text)
            elif key == "author":
                payload["author_id"] = user_id(ctx, text, field=key)
            elif key == "tags":
                payload["tags"] = cells.tags(text)
            elif key in ("birthday", "purchased_on"):
                payload[key] = cells.to_date(cell, field=key)
            elif key == "at":
                payload["at"] = cells.to_datetime(cell, field=key, zone=ctx.zone)
            elif key == "amount":
                payload["amount"] = cells.amount(cell, field=key)
            elif key in ctx.choices:
                payload[key] = cells.choice(key, text, ctx.choices)
            else:
                payload[key] = text
        except Invalid as exc:
            problems.append(problem_of(ctx, row, exc, raw))
    if custom:
        payload["custom"] = custom
    return payload


def validated(
    model: type[BaseModel], ctx: Context, row: int, payload: dict[str, Any],
    raw: dict[str, Cell], problems: list[Problem],
) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as error:
        problems.extend(_schema_problems(ctx, row, error, raw))
        return None


def each_field(
    fn: Any, fields: dict[str, Any], ctx: Context, row: int, raw: dict[str, Cell],
    problems: list[Problem],
) -> dict[str, Any] | None:
    """Normalise all fields at once; on a refusal, field by field so every problem is named."""
    try:
        return fn(fields)
    except Invalid:
        pass
    for key, value in fields.items():
        try:
            fn({key: value})
        except Invalid as exc:
            problems.append(problem_of(ctx, row, exc, raw))
    return None


async def custom_values(
    session: AsyncSession, ctx: Context, row: int, values: dict[str, Any],
    raw: dict[str, Cell], problems: list[Problem],
) -> dict[str, Any]:
    if not values and not ctx.definitions:  # nothing to check: the entity has no custom fields
        return {}
    try:
        return await custom_field.validate_values(
            session, entity=ctx.custom_entity, values=values, definitions=ctx.definitions
        )
    except Invalid as exc:
        problems.append(problem_of(ctx, row, exc, raw))
        return {}


def customer_keys(record: dict[str, Any]) -> list[tuple[str, str]]:
    """What makes two customers the same, strongest first: the duplicate guard's keys."""
    keys = [(k, record[k]) for k in ("credit_code", "phone", "email") if record.get(k)]
    if record["kind"] == Kind.company.value:
        keys.append(("name", record["name_key"]))
    return keys


def contact_keys(record: dict[str, Any]) -> list[tuple[str, str]]:
    """What makes two contacts of one company the same, strongest first."""
    keys = [(k, record[k]) for k in ("mobile", "email") if record.get(k)]
    keys.append(("name", fold_name(record["name"])))
    return keys


KEYS_OF = {Entity.customers: customer_keys, Entity.contacts: contact_keys}
"""The keys of a customer or contact record (imports merge into these)."""


async def check_customer(
    session: AsyncSession, ctx: Context, row: int, raw: dict[str, Cell]
) -> Checked:
    problems: list[Problem] = []
    payload = row_payload(ctx, row, raw, problems)
    if "kind" not in payload:
        # Without a kind column a row is a person only when it carries a person's fields.
        person = any(payload.get(k) is not None for k in PERSON_ONLY)
        payload["kind"] = (Kind.person if person else Kind.company).value
    data: CustomerCreate | None = validated(CustomerCreate, ctx, row, payload, raw, problems)
    checked = Checked(row, problems=problems)
    if data is None:
        return checked
    kind = data.kind
    sent = data.model_dump(exclude={"kind", "tags", "custom", "stage"}, exclude_none=True)
    fields = each_field(lambda f: normalised(kind, f), sent, ctx, row, raw, problems)
    custom = await custom_values(session, ctx, row, data.custom or {}, raw, problems)
    if fields is None or problems:
        return checked
    if "stage" in payload:
        fields["stage"] = data.stage.value
    checked.record = {**fields, "kind": kind.value}
    checked.custom = custom
    checked.tags = data.tags
    checked.keys = customer_keys(checked.record)
    return checked


async def check_contact(
    session: AsyncSession, ctx: Context, row: int, raw: dict[str, Cell]
) -> Checked:
    problems: list[Problem] = []
    payload = row_payload(ctx, row, raw, problems)
    company = payload.pop("customer", None)
    code = payload.pop("customer_credit_code", None)
    checked = Checked(row, problems=problems)
    if code:
        try:
            checked.customer_ref = ("credit_code", normalize.credit_code(code))
        except Invalid as exc:
            problems.append(Problem(row, ctx.header("customer_credit_code"), code[:MAX_VALUE],
                                    exc.message))
    elif company:
        checked.customer_ref = ("name", normalize.company_key(company))
    else:
        problems.append(Problem(row, ctx.header("customer"), None,
                                "name the company this contact works at"))
    data: ContactCreate | None = validated(ContactCreate, ctx, row, payload, raw, problems)
    if data is None:
        return checked
    sent = data.model_dump(exclude={"custom"}, exclude_none=True)
    fields = each_field(contact_normalised, sent, ctx, row, raw, problems)
    custom = await custom_values(session, ctx, row, data.custom or {}, raw, problems)
    if fields is None or problems:
        return checked
    checked.record = fields
    checked.custom = custom
    checked.keys = contact_keys(fields)
    return checked


CHECKERS = {Entity.customers: check_customer, Entity.contacts: check_contact}
