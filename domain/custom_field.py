"""Admin-defined extra fields per entity, and the rules every record write applies to their values.

Values live on each record in a JSON column `custom`, keyed by the field's stable `key`, so a
field can be relabelled, retired and restored without touching a single record. The stored form
is chosen to be exact and comparable in SQL on SQLite and PostgreSQL alike:

    text, long_text, single_select, email, phone, url   JSON string (normalised)
    number                                              JSON string, canonical Decimal: "12.5"
    money                                               JSON string, two decimals: "12.50"
    date                                                JSON string "2026-11-23"
    datetime                                            JSON string, UTC: "2026-11-23T01:30:00Z"
    boolean                                             JSON true / false
    multi_select                                        JSON array of options, sorted
    user                                                JSON integer, a users.id

A value that is absent, None, blank or an empty list is not stored at all.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)
from sqlalchemy import Boolean, Numeric, String, UniqueConstraint, literal, select
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, QueryableAttribute, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from domain import audit, normalize
from domain.access import Actor
from domain.db import Base, Timestamped, utcnow
from domain.errors import Conflict, Invalid, NotFound
from domain.schema import MAX_ID, Input, Patch
from domain.user import User

AUDIT_ENTITY = "custom_field"
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
MAX_OPTIONS = 200
MAX_TEXT = 500
"""Default length cap of a one-line text value, so a record's JSON stays small."""
MAX_LONG_TEXT = 10_000
# Digits before / after the point: number fits NUMERIC(24, 6), money NUMERIC(18, 2) like Money.
NUMBER_DIGITS = (18, 6)
MONEY_DIGITS = (16, 2)


class FieldEntity(StrEnum):
    customer = "customer"
    contact = "contact"
    lead = "lead"
    deal = "deal"
    ticket = "ticket"


class FieldType(StrEnum):
    text = "text"
    long_text = "long_text"
    number = "number"
    money = "money"
    date = "date"
    datetime = "datetime"
    single_select = "single_select"
    multi_select = "multi_select"
    boolean = "boolean"
    email = "email"
    phone = "phone"
    url = "url"
    user = "user"


SELECT_TYPES = frozenset({FieldType.single_select, FieldType.multi_select})
NUMERIC_TYPES = frozenset({FieldType.number, FieldType.money})
LENGTH_TYPES = frozenset({FieldType.text, FieldType.long_text})
BOUNDED_TYPES = NUMERIC_TYPES | LENGTH_TYPES | {FieldType.multi_select}
"""Types whose min_value/max_value mean something: value, length in characters, count of options."""


class CustomField(Base, Timestamped):
    __tablename__ = "custom_fields"
    __table_args__ = (UniqueConstraint("entity", "key", name="uq_custom_fields_entity_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    key: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(100))
    label_en: Mapped[str | None] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    options: Mapped[list[str]] = mapped_column(default=list)
    min_value: Mapped[Decimal | None] = mapped_column(Numeric(24, 6))
    max_value: Mapped[Decimal | None] = mapped_column(Numeric(24, 6))
    position: Mapped[int] = mapped_column(default=0)
    retired_at: Mapped[datetime | None]


# --- schemas -------------------------------------------------------------------------------

Label = Annotated[str, Field(min_length=1, max_length=100)]
Option = Annotated[str, Field(min_length=1, max_length=100)]
Position = Annotated[int, Field(ge=0, le=1_000_000)]
Bound = Annotated[Decimal, Field(allow_inf_nan=False, max_digits=24, decimal_places=6)]


def _clean_label(value: str | None) -> str | None:
    if value is None:
        return None
    value = re.sub(r"\s+", " ", value).strip()
    if not value:
        raise ValueError("must not be blank")
    return value


def _clean_options(options: list[str]) -> list[str]:
    """Trimmed options; duplicates (ignoring case) are an admin's slip, so refuse them."""
    cleaned, seen = [], set()
    for option in options:
        option = _one_line(option)
        if not option:
            raise ValueError("an option must not be blank")
        if option.casefold() in seen:
            raise ValueError(f"duplicate option: {option}")
        seen.add(option.casefold())
        cleaned.append(option)
    if len(cleaned) > MAX_OPTIONS:
        raise ValueError(f"at most {MAX_OPTIONS} options")
    return cleaned


def _options_problem(type_: FieldType, options: list[str]) -> str | None:
    if type_ in SELECT_TYPES and not options:
        return "a select field needs at least one option"
    if type_ not in SELECT_TYPES and options:
        return "only select fields have options"
    return None


def _bound_problem(
    type_: FieldType, name: str, bound: Decimal | None, options: list[str]
) -> str | None:
    if bound is None:
        return None
    if type_ not in BOUNDED_TYPES:
        return f"a {type_.value} field has no bounds"
    if type_ not in NUMERIC_TYPES and (bound < 0 or bound != bound.to_integral_value()):
        return "must be a whole number of at least 0"
    if type_ is FieldType.multi_select and name == "min_value" and bound > len(options):
        return "asks for more choices than there are options"
    return None


def _order_problem(min_value: Decimal | None, max_value: Decimal | None) -> str | None:
    if min_value is not None and max_value is not None and min_value > max_value:
        return "must not be less than min_value"
    return None


def _rule_problem(
    type_: FieldType, options: list[str], min_value: Decimal | None, max_value: Decimal | None
) -> tuple[str, str] | None:
    """The first (field, message) that makes a definition unusable, for an update's merged state."""
    checks = (
        ("options", _options_problem(type_, options)),
        ("min_value", _bound_problem(type_, "min_value", min_value, options)),
        ("max_value", _bound_problem(type_, "max_value", max_value, options)),
        ("max_value", _order_problem(min_value, max_value)),
    )
    return next(((name, problem) for name, problem in checks if problem), None)


class CustomFieldCreate(Input):
    """Cross-field rules sit on the later field (options, then bounds) so errors name the field."""

    entity: FieldEntity
    key: str
    label: Label
    label_en: Label | None = None
    type: FieldType
    required: bool = False
    options: list[Option] = Field(default=[], validate_default=True)
    min_value: Bound | None = None
    max_value: Bound | None = None
    position: Position = 0

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not KEY_PATTERN.fullmatch(value):
            raise ValueError("use 1–64 lower-case letters, digits and _, starting with a letter")
        return value

    @field_validator("label", "label_en")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        return _clean_label(value)

    @field_validator("options")
    @classmethod
    def _options(cls, value: list[str], info: ValidationInfo) -> list[str]:
        value = _clean_options(value)
        if "type" in info.data and (problem := _options_problem(info.data["type"], value)):
            raise ValueError(problem)
        return value

    @field_validator("min_value", "max_value")
    @classmethod
    def _bounds(cls, value: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if "type" not in info.data or info.field_name is None:
            return value
        options = info.data.get("options", [])
        problem = _bound_problem(info.data["type"], info.field_name, value, options)
        if info.field_name == "max_value":
            problem = problem or _order_problem(info.data.get("min_value"), value)
        if problem:
            raise ValueError(problem)
        return value


class CustomFieldUpdate(Patch):
    not_null = frozenset({"label", "required", "options", "position"})

    """Type and key are fixed for life: stored values depend on both."""

    label: Label | None = None
    label_en: Label | None = None
    required: bool | None = None
    options: list[Option] | None = None
    """Replaces the list. Removing an option leaves records that hold it untouched."""
    min_value: Bound | None = None
    max_value: Bound | None = None
    position: Position | None = None

    @field_validator("label", "label_en")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        return _clean_label(value)

    @field_validator("options")
    @classmethod
    def _options(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _clean_options(value)


def _plain_bound(value: Decimal | None) -> Decimal | None:
    return None if value is None else _canonical(value)


class CustomFieldRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    entity: FieldEntity
    key: str
    label: str
    label_en: str | None
    type: FieldType
    required: bool
    options: list[str]
    min_value: Decimal | None
    max_value: Decimal | None
    position: int
    retired_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @field_validator("min_value", "max_value")
    @classmethod
    def _bound(cls, value: Decimal | None) -> Decimal | None:
        return _plain_bound(value)


# --- service -------------------------------------------------------------------------------

_SNAPSHOT = (
    "entity",
    "key",
    "label",
    "label_en",
    "type",
    "required",
    "options",
    "min_value",
    "max_value",
    "position",
    "retired_at",
)


def _snapshot(row: CustomField) -> dict[str, Any]:
    snap = {name: getattr(row, name) for name in _SNAPSHOT}
    snap["min_value"] = _plain_bound(row.min_value)
    snap["max_value"] = _plain_bound(row.max_value)
    snap["options"] = list(row.options)
    return snap


async def create(session: AsyncSession, *, actor: Actor, data: CustomFieldCreate) -> CustomField:
    """A new field; its key can never be reused for the entity, not even after retiring it."""
    taken = await session.scalar(
        select(CustomField.id).where(
            CustomField.entity == data.entity.value, CustomField.key == data.key
        )
    )
    if taken is not None:
        raise Conflict(
            f"the key {data.key} is taken for {data.entity.value}"
            " (if its field is retired, restore it instead)",
            field="key",
        )
    row = CustomField(
        **data.model_dump(exclude={"entity", "type"}),
        entity=data.entity.value,
        type=data.type.value,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity=AUDIT_ENTITY,
        entity_id=row.id,
        after=_snapshot(row),
    )
    return row


async def update(
    session: AsyncSession, *, actor: Actor, field_id: int, data: CustomFieldUpdate
) -> CustomField:
    """Relabel, reorder, change options or bounds; values keyed by the key are untouched."""
    row = await get(session, field_id=field_id)
    before = _snapshot(row)
    changes = data.model_dump(exclude_unset=True)
    merged = {
        name: changes.get(name, getattr(row, name))
        for name in ("options", "min_value", "max_value")
    }
    problem = _rule_problem(
        FieldType(row.type), merged["options"], merged["min_value"], merged["max_value"]
    )
    if problem:
        raise Invalid(problem[1], field=problem[0])
    for name, value in changes.items():
        setattr(row, name, value)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="update",
        entity=AUDIT_ENTITY,
        entity_id=row.id,
        before=before,
        after=_snapshot(row),
    )
    return row


async def retire(session: AsyncSession, *, actor: Actor, field_id: int) -> CustomField:
    """Hide the field from forms and stop new writes; records keep their values for history."""
    row = await get(session, field_id=field_id)
    if row.retired_at is None:
        before = _snapshot(row)
        row.retired_at = utcnow()
        await session.flush()
        audit.record(
            session,
            actor=actor,
            action="retire",
            entity=AUDIT_ENTITY,
            entity_id=row.id,
            before=before,
            after=_snapshot(row),
        )
    return row


async def restore(session: AsyncSession, *, actor: Actor, field_id: int) -> CustomField:
    """Bring a retired field back, with every value records kept meanwhile."""
    row = await get(session, field_id=field_id)
    if row.retired_at is not None:
        before = _snapshot(row)
        row.retired_at = None
        await session.flush()
        audit.record(
            session,
            actor=actor,
            action="restore",
            entity=AUDIT_ENTITY,
            entity_id=row.id,
            before=before,
            after=_snapshot(row),
        )
    return row


async def get(session: AsyncSession, *, field_id: int) -> CustomField:
    row = await session.get(CustomField, field_id)
    if row is None:
        raise NotFound("no such custom field", field="field_id")
    return row


async def list_fields(
    session: AsyncSession, *, entity: FieldEntity | str, include_retired: bool = False
) -> list[CustomField]:
    """In form order (position, then id), which is also the order problems are reported in."""
    query = (
        select(CustomField)
        .where(CustomField.entity == str(entity))
        .order_by(CustomField.position, CustomField.id)
    )
    if not include_retired:
        query = query.where(CustomField.retired_at.is_(None))
    return list((await session.scalars(query)).all())


# --- values --------------------------------------------------------------------------------


def _blank(raw: Any) -> bool:
    """What a form sends for "no value": treated as clearing the field."""
    return raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []


def _canonical(value: Decimal) -> Decimal:
    """Same number, no trailing zeros, no exponent, no negative zero."""
    if value == 0:
        return Decimal(0)
    return Decimal(format(value.normalize(), "f"))


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
_DATE = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")
_DATETIME_HINT = "must be a date and time like 2026-11-23T09:30+08:00"
_TRUE = frozenset({"true", "1", "yes", "y", "是"})
_FALSE = frozenset({"false", "0", "no", "n", "否"})


def _decimal(raw: Any, type_: FieldType, where: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal | str):
        raise Invalid("must be a number", field=where)
    if isinstance(raw, str):
        text = _nfkc(raw)
        if _GROUPED.fullmatch(text):
            text = text.replace(",", "")  # 1,234.50 as people and spreadsheets write it
        if not _NUMBER.fullmatch(text):
            raise Invalid("must be a number", field=where)
        raw = text
    try:
        # str() of a float is its shortest round-trip form, so 0.1 stays exactly 0.1.
        value = Decimal(str(raw)) if isinstance(raw, float) else Decimal(raw)
    except InvalidOperation:
        raise Invalid("must be a number", field=where) from None
    if not value.is_finite():
        raise Invalid("must be a finite number", field=where)
    value = _canonical(value)
    whole, places = MONEY_DIGITS if type_ is FieldType.money else NUMBER_DIGITS
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > places:
        raise Invalid(f"at most {places} decimal places", field=where)
    if value != 0 and value.adjusted() >= whole:
        raise Invalid(f"at most {whole} digits before the decimal point", field=where)
    return value


def _number_text(value: Decimal, type_: FieldType) -> str:
    if type_ is FieldType.money:
        return str(value.quantize(Decimal("0.01")))
    return format(value, "f")


def _date(raw: Any, where: str) -> str:
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw.isoformat()
    if isinstance(raw, str) and (match := _DATE.fullmatch(_nfkc(raw))):
        try:
            return date(*(int(part) for part in match.groups())).isoformat()
        except ValueError:
            raise Invalid("no such date", field=where) from None
    raise Invalid("must be a date like 2026-11-23", field=where)


def _datetime(raw: Any, where: str) -> str:
    if isinstance(raw, str):
        try:
            raw = datetime.fromisoformat(_nfkc(raw))
        except ValueError:
            raise Invalid(_DATETIME_HINT, field=where) from None
    if not isinstance(raw, datetime):
        raise Invalid(_DATETIME_HINT, field=where)
    if raw.tzinfo is None or raw.utcoffset() is None:
        raise Invalid("give a time zone offset, e.g. 2026-11-23T09:30+08:00", field=where)
    # Fixed width, UTC, whole seconds: equal instants are equal strings and sort in time order.
    return raw.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _boolean(raw: Any, where: str) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = _nfkc(raw).lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise Invalid("must be true or false", field=where)


def _url(raw: Any, where: str) -> str:
    if not isinstance(raw, str):
        raise Invalid("must be a web address", field=where)
    return normalize.url(raw, field=where)


def _user_id(raw: Any, where: str) -> int:
    if isinstance(raw, str) and re.fullmatch(r"[0-9]{1,10}", _nfkc(raw)):
        raw = int(_nfkc(raw))
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 < raw <= MAX_ID:
        raise Invalid("must be a user id", field=where)
    return raw


def _nfkc(value: str) -> str:
    """Full-width digits and signs (１２．５, ２０２６／１１／２３) as Chinese IMEs type them."""
    return unicodedata.normalize("NFKC", value).strip()


def _one_line(value: str) -> str:
    """NFC, no NUL (PostgreSQL cannot store it), whitespace runs collapsed: how options are kept."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", value.replace("\x00", ""))).strip()


def _text(raw: Any, type_: FieldType, where: str) -> str:
    if not isinstance(raw, str):
        raise Invalid("must be text", field=where)
    if type_ is FieldType.long_text:
        return unicodedata.normalize("NFC", raw.replace("\x00", "").replace("\r\n", "\n")).strip()
    return _one_line(raw)


def _multi(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list | tuple) or not all(isinstance(v, str) for v in raw):
        raise Invalid("must be a list of options", field=where)
    return sorted({_one_line(v) for v in raw} - {""})


def parse(definition: CustomField, raw: Any) -> Any:
    """The stored form of a non-blank value, checking its type only (not options, bounds, users).

    Pure, so it also serves filters and lets an unchanged value be recognised as unchanged
    even after the field's options or bounds changed.
    """
    type_, where = FieldType(definition.type), f"custom.{definition.key}"
    if type_ in LENGTH_TYPES or type_ is FieldType.single_select:
        return _text(raw, type_, where)
    if type_ in NUMERIC_TYPES:
        return _number_text(_decimal(raw, type_, where), type_)
    if type_ is FieldType.date:
        return _date(raw, where)
    if type_ is FieldType.datetime:
        return _datetime(raw, where)
    if type_ is FieldType.boolean:
        return _boolean(raw, where)
    if type_ is FieldType.multi_select:
        return _multi(raw, where)
    if type_ is FieldType.email:
        if not isinstance(raw, str):
            raise Invalid("must be an email address", field=where)
        return normalize.email(raw, field=where)
    if type_ is FieldType.phone:
        if not isinstance(raw, str | int) or isinstance(raw, bool):
            raise Invalid("must be a phone number", field=where)
        return normalize.phone(str(raw), field=where)
    if type_ is FieldType.url:
        return _url(raw, where)
    return _user_id(raw, where)


def _check_bounds(definition: CustomField, size: Decimal, where: str, unit: str) -> None:
    low, high = definition.min_value, definition.max_value
    if low is not None and size < low:
        raise Invalid(f"must be at least {_canonical(low)}{unit}", field=where)
    if high is not None and size > high:
        raise Invalid(f"must be at most {_canonical(high)}{unit}", field=where)


async def _check_rules(session: AsyncSession, definition: CustomField, value: Any) -> None:
    """Rules of the definition as it stands now: options, bounds, an active user."""
    type_, where = FieldType(definition.type), f"custom.{definition.key}"
    if type_ in SELECT_TYPES:
        chosen = value if isinstance(value, list) else [value]
        for option in chosen:
            if option not in definition.options:
                allowed = ", ".join(definition.options)
                raise Invalid(f"{option} is not an option; choose from: {allowed}", field=where)
        if type_ is FieldType.multi_select:
            _check_bounds(definition, Decimal(len(value)), where, " options")
    elif type_ in NUMERIC_TYPES:
        _check_bounds(definition, Decimal(value), where, "")
    elif type_ in LENGTH_TYPES:
        cap = MAX_TEXT if type_ is FieldType.text else MAX_LONG_TEXT
        if len(value) > cap:
            raise Invalid(f"at most {cap} characters", field=where)
        _check_bounds(definition, Decimal(len(value)), where, " characters")
    elif type_ is FieldType.user:
        user = await session.get(User, value)
        if user is None or not user.active:
            raise Invalid("no such active user", field=where)


async def validate_values(
    session: AsyncSession,
    *,
    entity: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None = None,
    definitions: list[CustomField] | None = None,
) -> dict[str, Any]:
    """The record's custom values after this write, normalised and ready to store.

    `definitions` (every field of the entity, retired ones included) saves the lookup when
    many records are written at once, as imports do.

    `existing` None means the record is being created. Otherwise `values` is a partial update
    merged over `existing`; a key sent as None (or blank) clears it. Problems are raised one at a
    time, unknown keys first, then in form order, so the same input always names the same field.

    Rules on update, chosen so that old records stay editable:
    - a value sent unchanged is kept without re-checking, even if its option was removed, its
      bounds tightened or its field retired (a client may echo back the whole dict);
    - a retired field may be cleared but not set to a new value;
    - a required field is enforced only if this write touches it, so adding a required field
      does not block unrelated edits of records made before it existed.
    """
    if not isinstance(values, dict):
        raise Invalid("custom fields must be an object keyed by field key", field="custom")
    if definitions is None:
        definitions = await list_fields(session, entity=entity, include_retired=True)
    by_key = {d.key: d for d in definitions}
    for key in sorted(map(str, values)):
        if key not in by_key:
            raise Invalid("unknown custom field", field=f"custom.{key}")

    creating = existing is None
    merged: dict[str, Any] = {k: v for k, v in (existing or {}).items() if v is not None}
    for definition in definitions:
        key, where = definition.key, f"custom.{definition.key}"
        retired = definition.retired_at is not None
        if key in values:
            raw = values[key]
            value = None if _blank(raw) else parse(definition, raw)
            if value in (None, "", []):
                merged.pop(key, None)
            elif merged.get(key) != value:
                if retired:
                    raise Invalid(
                        "this field is retired; its value can no longer change", field=where
                    )
                await _check_rules(session, definition, value)
                merged[key] = value
        needs_check = creating or key in values
        if definition.required and not retired and needs_check and key not in merged:
            raise Invalid("required", field=where)

    order = {d.key: i for i, d in enumerate(definitions)}
    return dict(sorted(merged.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


# --- filters -------------------------------------------------------------------------------


class _ArrayHasOption(FunctionElement[bool]):
    """`column -> key` is a JSON array holding the option, compiled per dialect below.

    Arguments: the JSON column, the SQLite path '$."key"', the bare key for PostgreSQL, the option.
    """

    type = Boolean()
    name = "custom_array_has_option"
    inherit_cache = True


@compiles(_ArrayHasOption, "sqlite")
def _array_has_option_sqlite(element: _ArrayHasOption, compiler: SQLCompiler, **kw: Any) -> str:
    column, path, _key, option = element.clauses
    column, path, option = (compiler.process(c, **kw) for c in (column, path, option))
    return f"EXISTS (SELECT 1 FROM json_each({column}, {path}) AS e WHERE e.value = {option})"


@compiles(_ArrayHasOption, "postgresql")
def _array_has_option_pg(element: _ArrayHasOption, compiler: SQLCompiler, **kw: Any) -> str:
    column, _path, key, option = element.clauses
    column, key, option = (compiler.process(c, **kw) for c in (column, key, option))
    # jsonb containment: an exact element match, and false (not an error) on a non-array value.
    return f"((CAST({column} AS JSONB) -> {key}) @> jsonb_build_array(CAST({option} AS TEXT)))"


@compiles(_ArrayHasOption)
def _array_has_option_other(element: _ArrayHasOption, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError("multi-select filters are built for SQLite and PostgreSQL only")


def filter_clause(
    column: QueryableAttribute[Any] | ColumnElement[Any], definition: CustomField, value: str
) -> ColumnElement[bool]:
    """Records whose custom value for `definition` equals `value` (a query-string value).

    The value is parsed like a write, so "12.5" finds money "12.50" and "138 0013 8000" finds
    "+8613800138000"; options are not checked, so a removed option still finds old records.
    A multi-select matches when it holds the option. Records without the value never match,
    so "false" finds only records explicitly set to false.
    """
    type_, key, where = FieldType(definition.type), definition.key, f"custom.{definition.key}"
    if not isinstance(value, str) or not value.strip():
        raise Invalid("give a value to filter by", field=where)
    if type_ is FieldType.multi_select:
        return _ArrayHasOption(
            column, literal(f'$."{key}"'), literal(key), literal(_text(value, type_, where))
        )
    parsed = parse(definition, value)
    if type_ is FieldType.boolean:
        return column[key].as_boolean() == parsed
    if type_ is FieldType.user:
        return column[key].as_integer() == parsed
    return column[key].as_string() == parsed
