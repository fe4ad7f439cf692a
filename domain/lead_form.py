"""Public web forms that create leads: which fields, which source and campaign they tag.

An admin defines a form (`LeadFormCreate`); anyone may then fill it in at `/forms/<slug>`
without signing in. The form decides which lead fields a stranger may set — never the source,
campaign, owner or priority, which come from the form or from the rules — and which of them
are required. `read_submission` turns what was posted into a `LeadCreate`, pure, so the API only
parses the body and calls capture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    computed_field,
    field_validator,
)
from sqlalchemy import Boolean, String, Text, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain import audit, custom_field
from domain.access import Actor, Role
from domain.db import Base, Timestamped
from domain.errors import Conflict, Invalid, NotFound
from domain.lead.schemas import LeadCreate
from domain.schema import Input, Patch

__all__ = [
    "PUBLIC_FIELDS",
    "FieldSpec",
    "FormInvalid",
    "FormSettings",
    "LeadForm",
    "LeadFormCreate",
    "LeadFormRead",
    "LeadFormUpdate",
    "PublicForm",
    "Submission",
    "create",
    "get",
    "list_forms",
    "public",
    "read_submission",
    "update",
]

AUDIT_ENTITY = "lead_form"


class LeadForm(Base, Timestamped):
    __tablename__ = "lead_forms"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    fields: Mapped[list[str]]
    required: Mapped[list[str]]
    source: Mapped[str | None] = mapped_column(String(60))
    campaign: Mapped[str | None] = mapped_column(String(100))
    thank_you: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- what a form may contain -----------------------------------------------------------------

PUBLIC_FIELDS: dict[str, tuple[str, str, str, int | None]] = {
    # name: (zh-CN label, English label, input kind, max length as LeadCreate allows)
    "contact_name": ("姓名", "Name", "text", 100),
    "company": ("公司名称", "Company", "text", 200),
    "phone": ("手机号码", "Mobile phone", "tel", 40),
    "email": ("电子邮箱", "Email", "email", 254),
    "wechat_id": ("微信号", "WeChat ID", "text", 40),
    "province": ("省份", "Province", "text", 40),
    "city": ("城市", "City", "text", 40),
    "industry": ("所属行业", "Industry", "text", 100),
    "product_interest": ("感兴趣的产品", "Product of interest", "text", 100),
    "message": ("留言", "Message", "textarea", 10_000),
    "consent": (
        "我同意贵公司就本次咨询与我联系",
        "I agree to be contacted about this",
        "checkbox",
        None,
    ),
    "visitor_id": ("访客标识", "Visitor id", "hidden", 100),
}
"""LeadCreate fields a stranger may fill in. Source, campaign and priority are the form's."""
REACH_FIELDS = ("phone", "email", "wechat_id")
CUSTOM_PREFIX = "custom."
MAX_FIELDS = 40
DEFAULT_THANK_YOU = "感谢您的留言，我们会尽快与您联系。Thank you, we will be in touch soon."
_CUSTOM_INPUT = {
    "text": "text",
    "long_text": "textarea",
    "number": "number",
    "money": "number",
    "date": "date",
    "datetime": "datetime",
    "single_select": "select",
    "multi_select": "multiselect",
    "boolean": "checkbox",
    "email": "email",
    "phone": "tel",
    "url": "url",
}
"""Custom field types a public form can show; `user` is not one (it would list staff)."""
Slug = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9-]{1,59}$")
]
"""2-60 lower-case letters, digits and dashes: the form's address, /forms/<slug>."""
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ThankYou = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
FieldName = Annotated[str, StringConstraints(min_length=1, max_length=80)]
Source = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Campaign = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class FormSettings(BaseModel):
    """Anti-abuse settings of one form."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    honeypot: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,39}$")] = "website"
    """A field people never see (hidden by CSS) and bots fill in; filled = a bot."""
    rate_limit: Annotated[int, Field(ge=1, le=10_000)] = 5
    """Submissions per client IP per minute, counted per form."""


def _shape(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("each field only once")
    for name in value:
        if name not in PUBLIC_FIELDS and not (
            name.startswith(CUSTOM_PREFIX)
            and custom_field.KEY_PATTERN.fullmatch(name.removeprefix(CUSTOM_PREFIX))
        ):
            raise ValueError(
                f"{name!r} cannot be on a public form: use {', '.join(PUBLIC_FIELDS)} "
                "or custom.<key>"
            )
    return value


class LeadFormCreate(Input):
    slug: Slug
    name: Name
    fields: Annotated[list[FieldName], Field(min_length=1, max_length=MAX_FIELDS)]
    """In display order; custom fields of leads as `custom.<key>`."""
    required: Annotated[list[FieldName], Field(max_length=MAX_FIELDS)] = Field(default_factory=list)
    source: Source | None = None
    campaign: Campaign | None = None
    thank_you: ThankYou = DEFAULT_THANK_YOU
    active: bool = True
    settings: FormSettings = Field(default_factory=FormSettings)

    @field_validator("fields", "required")
    @classmethod
    def _fields(cls, value: list[str]) -> list[str]:
        return _shape(value)


class LeadFormUpdate(Patch):
    """Only sent fields change; `fields`, `required` and `settings` are replaced whole."""

    not_null = frozenset({"slug", "name", "fields", "required", "thank_you", "active", "settings"})

    slug: Slug | None = None
    name: Name | None = None
    fields: Annotated[list[FieldName], Field(min_length=1, max_length=MAX_FIELDS)] | None = None
    required: Annotated[list[FieldName], Field(max_length=MAX_FIELDS)] | None = None
    source: Source | None = None
    campaign: Campaign | None = None
    thank_you: ThankYou | None = None
    active: bool | None = None
    settings: FormSettings | None = None

    @field_validator("fields", "required")
    @classmethod
    def _fields(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _shape(value)


class LeadFormRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    slug: str
    name: str
    fields: list[str]
    required: list[str]
    source: str | None
    campaign: str | None
    thank_you: str
    active: bool
    settings: FormSettings
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def path(self) -> str:
        """Where the public form lives on this server."""
        return f"/forms/{self.slug}"


# --- admin service ---------------------------------------------------------------------------


async def _check(
    session: AsyncSession, *, fields: list[str], required: list[str], settings: FormSettings
) -> None:
    """Cross-field rules, so a published form can actually produce a lead."""
    missing = [name for name in required if name not in fields]
    if missing:
        raise Invalid(f"not among the form's fields: {', '.join(missing)}", field="required")
    if not any(name in fields for name in REACH_FIELDS):
        raise Invalid("a form needs phone, email or wechat_id to reach the person", field="fields")
    if settings.honeypot in fields:
        raise Invalid("the honeypot must not be one of the form's fields", field="settings")
    definitions = {
        d.key: d for d in await custom_field.list_fields(session, entity="lead")
    }  # live ones only: a retired field cannot be added to a form
    for name in fields:
        if not name.startswith(CUSTOM_PREFIX):
            continue
        definition = definitions.get(name.removeprefix(CUSTOM_PREFIX))
        if definition is None:
            raise Invalid(f"no such custom field of leads: {name}", field="fields")
        if definition.type not in _CUSTOM_INPUT:
            raise Invalid(f"a {definition.type} field cannot be on a public form", field="fields")
    for definition in definitions.values():
        if definition.required and f"{CUSTOM_PREFIX}{definition.key}" not in fields:
            raise Invalid(
                f"every lead must have custom.{definition.key}: put it on the form",
                field="fields",
            )


def _require_admin(actor: Actor) -> None:
    actor.require_role(Role.admin)


def _snapshot(row: LeadForm) -> dict[str, Any]:
    return LeadFormRead.model_validate(row).model_dump(
        mode="json", exclude={"id", "created_at", "updated_at", "path"}
    )


async def _slug_free(session: AsyncSession, slug: str, form_id: int | None = None) -> None:
    taken = await session.scalar(select(LeadForm.id).where(LeadForm.slug == slug))
    if taken is not None and taken != form_id:
        raise Conflict(f"the address /forms/{slug} is taken", field="slug", existing_id=taken)


async def _flush(session: AsyncSession, slug: str) -> None:
    """Flush; two admins saving one slug at once get a 409, not a 500 (the request's
    transaction then rolls back as the error leaves it)."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"the address /forms/{slug} is taken", field="slug") from None


async def create(session: AsyncSession, *, actor: Actor, data: LeadFormCreate) -> LeadForm:
    """A new form, live at /forms/<slug> at once when `active`."""
    _require_admin(actor)
    await _check(session, fields=data.fields, required=data.required, settings=data.settings)
    await _slug_free(session, data.slug)
    row = LeadForm(**data.model_dump(exclude={"settings"}), settings=data.settings.model_dump())
    session.add(row)
    await _flush(session, data.slug)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity=AUDIT_ENTITY,
        entity_id=row.id,
        after=_snapshot(row),
    )
    return row


async def get(session: AsyncSession, *, actor: Actor, form_id: int) -> LeadForm:
    _require_admin(actor)
    row = await session.get(LeadForm, form_id)
    if row is None:
        raise NotFound("no such form", field="form_id")
    return row


async def list_forms(session: AsyncSession, *, actor: Actor) -> list[LeadForm]:
    _require_admin(actor)
    return list((await session.scalars(select(LeadForm).order_by(LeadForm.id))).all())


async def update(
    session: AsyncSession, *, actor: Actor, form_id: int, data: LeadFormUpdate
) -> LeadForm:
    """Change what was sent; the result must still be a form that can produce leads."""
    row = await get(session, actor=actor, form_id=form_id)
    before = _snapshot(row)
    changes = data.model_dump(exclude_unset=True)
    settings = data.settings if data.settings is not None else FormSettings(**row.settings)
    await _check(
        session,
        fields=changes.get("fields", row.fields),
        required=changes.get("required", row.required),
        settings=settings,
    )
    if "slug" in changes:
        await _slug_free(session, changes["slug"], form_id)
    for name, value in changes.items():
        setattr(row, name, settings.model_dump() if name == "settings" else value)
    await _flush(session, row.slug)
    after = _snapshot(row)
    if after != before:
        audit.record(
            session,
            actor=actor,
            action="update",
            entity=AUDIT_ENTITY,
            entity_id=row.id,
            before=before,
            after=after,
        )
    return row


# --- the public side -------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldSpec:
    """One input of the public page, as the template and the parser need it."""

    name: str
    label: str
    label_en: str | None
    input: str
    required: bool
    options: tuple[str, ...] = ()
    max_length: int | None = None


@dataclass(frozen=True)
class PublicForm:
    """An active form with its inputs resolved (custom field labels, types, options)."""

    id: int
    slug: str
    name: str
    thank_you: str
    source: str | None
    campaign: str | None
    settings: FormSettings
    fields: tuple[FieldSpec, ...]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.fields)


async def public(session: AsyncSession, *, slug: str) -> PublicForm:
    """The active form at `slug`; NotFound for an unknown or inactive one (no difference told).

    A custom field retired after the form was made silently drops off the page.
    """
    row = await session.scalar(select(LeadForm).where(LeadForm.slug == slug))
    if row is None or not row.active:
        raise NotFound("no such form", field="slug")
    definitions = {d.key: d for d in await custom_field.list_fields(session, entity="lead")}
    specs = []
    for name in row.fields:
        required = name in row.required
        if name.startswith(CUSTOM_PREFIX):
            definition = definitions.get(name.removeprefix(CUSTOM_PREFIX))
            if definition is None or definition.type not in _CUSTOM_INPUT:
                continue
            specs.append(
                FieldSpec(
                    name=name,
                    label=definition.label,
                    label_en=definition.label_en,
                    input=_CUSTOM_INPUT[definition.type],
                    required=required or definition.required,
                    options=tuple(definition.options),
                )
            )
        else:
            label, label_en, kind, length = PUBLIC_FIELDS[name]
            specs.append(FieldSpec(name, label, label_en, kind, required, max_length=length))
    return PublicForm(
        id=row.id,
        slug=row.slug,
        name=row.name,
        thank_you=row.thank_you,
        source=row.source,
        campaign=row.campaign,
        settings=FormSettings(**row.settings),
        fields=tuple(specs),
    )


class FormInvalid(Invalid):
    """Every problem of one submission, so a person fixes them all at once."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__(problems[0][1], field=problems[0][0])
        self.problems = problems


@dataclass(frozen=True)
class Submission:
    """What was posted: a lead to capture, or a bot to be answered politely."""

    bot: bool
    lead: LeadCreate | None = None
    values: dict[str, Any] = field(default_factory=dict)
    """The accepted values by field name, to fill the page again after an error."""


def _blank(value: Any) -> bool:
    return (
        value is None
        or (isinstance(value, str) and not value.strip())
        or (isinstance(value, list | dict) and not value)
    )


def _flatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """`{"custom": {"budget": 5}}` as `{"custom.budget": 5}`: JSON clients may nest."""
    flat = {k: v for k, v in values.items() if k != "custom" or not isinstance(v, dict)}
    nested = values.get("custom")
    if isinstance(nested, dict):
        flat.update({f"{CUSTOM_PREFIX}{k}": v for k, v in nested.items()})
    return flat


def _with_zone(value: Any, tz: tzinfo | None) -> Any:
    """A browser's datetime-local has no zone: read it in the server's time zone."""
    if tz is None or not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    return parsed.replace(tzinfo=tz).isoformat() if parsed.tzinfo is None else value


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    return [
        (".".join(str(p) for p in error["loc"]) or "body", error["msg"])
        for error in exc.errors(include_url=False)
    ]


def read_submission(
    form: PublicForm,
    values: Mapping[str, Any],
    *,
    strict: bool,
    tz: tzinfo | None = None,
) -> Submission:
    """The lead a submission asks for, tagged with the form's source and campaign.

    `strict` (JSON) refuses names that are not the form's; HTML posts ignore them, since pages
    that embed a form often add their own (buttons, tracking). A filled honeypot makes a bot
    submission, whatever else was sent: the caller answers as if it worked and keeps nothing.
    FormInvalid lists every problem by field name.
    """
    values = _flatten(values) if strict else dict(values)
    if not _blank(values.get(form.settings.honeypot)):
        return Submission(bot=True)
    problems: list[tuple[str, str]] = []
    if strict:
        known = form.names | {form.settings.honeypot}
        problems += [(k, "not a field of this form") for k in sorted(values) if k not in known]
    lead: dict[str, Any] = {}
    custom: dict[str, Any] = {}
    accepted: dict[str, Any] = {}
    for spec in form.fields:
        raw = values.get(spec.name)
        if spec.input == "datetime" and not strict:
            raw = _with_zone(raw, tz)
        if _blank(raw):
            if spec.required:
                problems.append((spec.name, "required"))
            continue
        accepted[spec.name] = raw
        if spec.name.startswith(CUSTOM_PREFIX):
            custom[spec.name.removeprefix(CUSTOM_PREFIX)] = raw
        else:
            lead[spec.name] = raw
    try:
        data = LeadCreate.model_validate(
            {**lead, "custom": custom or None, "source": form.source, "campaign": form.campaign}
        )
    except ValidationError as exc:
        problems += [p for p in _problems(exc) if p[0] not in {n for n, _ in problems}]
        data = None
    if data is not None and "consent" in form.names:
        spec = next(f for f in form.fields if f.name == "consent")
        if spec.required and not data.consent:
            problems.append(("consent", "required"))
    if problems:
        raise FormInvalid(problems)
    return Submission(bot=False, lead=data, values=accepted)
