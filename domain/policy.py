"""Policies are versioned data: each publish adds a version; workflows pin the one they start on.

A policy is identified by its kind and a name ("default", or a team calendar's name) and is
never edited in place: `publish` validates the data with the kind's pydantic model and stores
it, normalised, as the next version. `current` gives the newest version; `at_version` the one
a running workflow pinned. Without any published version a kind runs on its model's defaults,
reported as version 0.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, TypeAdapter, ValidationError
from sqlalchemy import ForeignKey, String, UniqueConstraint, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain import audit
from domain.access import Actor
from domain.db import Base, utcnow
from domain.errors import Conflict, Invalid, NotFound

AUDIT_ENTITY = "policy"
DEFAULT_NAME = "default"

PolicyName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=60, pattern=r"^[^\x00-\x1f\x7f]+$"
    ),
]
"""A policy's name as callers give it: the column holds 60 characters, no control characters."""


class PolicyKind(StrEnum):
    assignment = "assignment"
    lead_sla = "lead_sla"
    calendar = "calendar"
    pool = "pool"
    scoring = "scoring"
    lead = "lead"
    pipeline = "pipeline"
    quote = "quote"
    approval = "approval"
    order = "order"
    contract = "contract"
    ticket = "ticket"
    ticket_sla = "ticket_sla"
    dispatch = "dispatch"


class Policy(Base):
    __tablename__ = "policies"
    __table_args__ = (UniqueConstraint("kind", "name", "version", name="uq_policies_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(60), default="default")
    version: Mapped[int]
    data: Mapped[dict[str, Any]]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PolicyRead(BaseModel):
    """One published version."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: PolicyKind
    name: str
    version: int
    data: dict[str, Any]
    created_by: int | None
    created_at: datetime


class PolicyCurrent(BaseModel):
    """The version in force; version 0 (and no id) means nobody published one: the defaults."""

    kind: PolicyKind
    name: str
    """The policy in force: a team calendar without its own version falls back to "default"."""
    version: int
    data: dict[str, Any]
    id: int | None = None
    created_by: int | None = None
    created_at: datetime | None = None


def model_for(kind: PolicyKind | str) -> type[BaseModel]:
    """The pydantic model of a policy kind.

    Imported lazily: the models live with their concepts (which import this module's table
    through domain.tables), and one of them may not exist yet in a partial checkout.
    """
    kind = PolicyKind(kind)
    if kind is PolicyKind.assignment:
        from domain.assignment import AssignmentPolicy

        return AssignmentPolicy
    if kind is PolicyKind.lead_sla:
        from domain.lead.rules import LeadSlaPolicy

        return LeadSlaPolicy
    if kind is PolicyKind.pool:
        from domain.lead.rules import PoolPolicy

        return PoolPolicy
    if kind is PolicyKind.lead:
        from domain.lead.rules import LeadPolicy

        return LeadPolicy
    if kind is PolicyKind.approval:
        from domain.approval import ApprovalPolicy

        return ApprovalPolicy
    if kind is PolicyKind.contract:
        from domain.contract.rules import ContractPolicy

        return ContractPolicy
    if kind is PolicyKind.pipeline:
        from domain.deal.rules import PipelinePolicy

        return PipelinePolicy
    if kind is PolicyKind.calendar:
        from domain.calendar import BusinessCalendar

        return BusinessCalendar
    if kind is PolicyKind.order:
        from domain.order.rules import OrderPolicy

        return OrderPolicy
    if kind is PolicyKind.quote:
        from domain.quote.rules import QuotePolicy

        return QuotePolicy
    if kind is PolicyKind.ticket:
        from domain.ticket.rules import TicketPolicy

        return TicketPolicy
    if kind is PolicyKind.ticket_sla:
        from domain.ticket.rules import TicketSlaPolicy

        return TicketSlaPolicy
    if kind is PolicyKind.dispatch:
        from domain.ticket.rules import DispatchPolicy

        return DispatchPolicy
    try:
        from domain.behaviour import ScoringPolicy
    except ImportError as exc:  # only until the scoring model lands
        raise Invalid("the scoring policy is not available yet", field="kind") from exc
    return ScoringPolicy


async def _newest(session: AsyncSession, *, kind: PolicyKind, name: str) -> Policy | None:
    return await session.scalar(
        select(Policy)
        .where(Policy.kind == kind.value, Policy.name == name)
        .order_by(Policy.version.desc())
        .limit(1)
    )


async def in_force(
    session: AsyncSession, *, kind: PolicyKind | str, name: str = DEFAULT_NAME
) -> Policy | None:
    """The newest stored version, or None; a calendar without its own falls back to "default"."""
    kind = PolicyKind(kind)
    row = await _newest(session, kind=kind, name=name)
    if row is None and kind is PolicyKind.calendar and name != DEFAULT_NAME:
        row = await _newest(session, kind=kind, name=DEFAULT_NAME)
    return row


async def current(
    session: AsyncSession, *, kind: PolicyKind | str, name: str = DEFAULT_NAME
) -> tuple[int, BaseModel]:
    """The newest version number and its parsed model; (0, the model's defaults) if none.

    For calendars `name` is the team's calendar name; an unknown one falls back to "default",
    and then to the default calendar. The version is then that of "default": a workflow that
    pins a calendar should take name and version from `in_force`'s row.
    """
    model = model_for(kind)
    row = await in_force(session, kind=kind, name=name)
    if row is None:
        return 0, model()
    return row.version, model.model_validate(row.data)


async def at_version(
    session: AsyncSession, *, kind: PolicyKind | str, name: str = DEFAULT_NAME, version: int
) -> BaseModel:
    """The model of a pinned version; version 0 is the model's defaults. NotFound otherwise.

    No calendar fallback here: pin the name `in_force` resolved together with the version.
    """
    model = model_for(kind)
    if version == 0:
        return model()
    row = await get_version(session, kind=kind, name=name, version=version)
    return model.model_validate(row.data)


def _invalid(exc: ValidationError) -> Invalid:
    """The first error, with its path under `data.` (e.g. data.rules.0.target)."""
    error = exc.errors(include_url=False)[0]
    message = error["msg"].removeprefix("Value error, ")
    field = ".".join(["data", *(str(part) for part in error["loc"])])
    return Invalid(message, field=field)


def _nul_path(value: Any, path: str) -> str | None:
    """Where a NUL character hides (PostgreSQL cannot store one), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _nul_path(key, path) or _nul_path(item, f"{path}.{key}")
            if found:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}.{index}")
            if found:
                return found
    return None


def validate(kind: PolicyKind | str, data: dict[str, Any]) -> BaseModel:
    """`data` parsed with the kind's model; Invalid naming the first bad field under `data.`."""
    model = model_for(kind)
    bad = _nul_path(data, "data")
    if bad:
        raise Invalid("must not contain NUL characters", field=bad)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None


_names = TypeAdapter(PolicyName)


def _check_name(name: str) -> str:
    try:
        return _names.validate_python(name)
    except ValidationError as exc:
        raise Invalid(exc.errors(include_url=False)[0]["msg"], field="name") from None


async def publish(
    session: AsyncSession,
    *,
    actor: Actor,
    kind: PolicyKind | str,
    name: str = DEFAULT_NAME,
    data: dict[str, Any],
) -> Policy:
    """Validate and store `data` as the next version of (kind, name), audited.

    The stored form is the model's JSON dump, so defaults are explicit and values canonical.
    Two publishes at once collide on the unique (kind, name, version): the loser gets a 409.
    Who may publish (admins) is the route's business.
    """
    kind = PolicyKind(kind)
    name = _check_name(name)
    parsed = validate(kind, data)
    previous = await session.scalar(
        select(func.max(Policy.version)).where(Policy.kind == kind.value, Policy.name == name)
    )
    row = Policy(
        kind=kind.value,
        name=name,
        version=(previous or 0) + 1,
        data=parsed.model_dump(mode="json"),
        created_by=actor.user_id,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict("someone published at the same time, retry", field="version") from None
    audit.record(
        session,
        actor=actor,
        action="publish",
        entity=AUDIT_ENTITY,
        entity_id=row.id,
        after={"kind": kind.value, "name": name, "version": row.version},
    )
    return row


async def get_version(
    session: AsyncSession, *, kind: PolicyKind | str, name: str = DEFAULT_NAME, version: int
) -> Policy:
    kind = PolicyKind(kind)
    row = await session.scalar(
        select(Policy).where(
            Policy.kind == kind.value, Policy.name == name, Policy.version == version
        )
    )
    if row is None:
        raise NotFound(f"no version {version} of the {kind.value} policy {name!r}", field="version")
    return row


async def versions(
    session: AsyncSession, *, kind: PolicyKind | str, name: str = DEFAULT_NAME
) -> list[Policy]:
    """Every published version, newest first."""
    kind = PolicyKind(kind)
    rows = await session.scalars(
        select(Policy)
        .where(Policy.kind == kind.value, Policy.name == name)
        .order_by(Policy.version.desc())
    )
    return list(rows.all())
