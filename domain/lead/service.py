"""Lead service functions: capture with normalisation and matching, reads, and transitions.

Transitions are written here but only ever called from the lead workflow's activities, so that
each one is serialised and on record in the workflow history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, behaviour, custom_field, normalize, timeline
from domain.access import Actor, Role, Scope
from domain.customer import Contact, Customer
from domain.db import utcnow
from domain.errors import Invalid, NotFound
from domain.lead import matching
from domain.lead.models import Lead, LeadStatus
from domain.lead.rules import LeadPolicy
from domain.lead.schemas import LeadCreate, LeadMatch, LeadPage, LeadQuery, LeadRead
from domain.user import User

ENTITY = "lead"
SEE_ALL = (Role.admin, Role.sales_manager)


def visible(actor: Actor) -> ColumnElement[bool]:
    """Reps see their own leads and the pool; managers their teams' too; admins all."""
    if actor.scopes is not None or actor.role is Role.admin:
        return Lead.id.is_not(None)
    pool = Lead.status == LeadStatus.pooled.value
    if actor.role is Role.sales_manager:
        team = select(User.id).where(User.team_id.in_(actor.managed_team_ids))
        return or_(pool, Lead.owner_id == actor.user_id, Lead.owner_id.in_(team))
    if actor.role is Role.sales:
        return or_(pool, Lead.owner_id == actor.user_id)
    return false()


def normalised(fields: dict[str, Any]) -> dict[str, Any]:
    """The stored form of whichever lead fields are given; imports check cell by cell with it."""
    fields = dict(fields)
    for key, fn in (
        ("phone", normalize.phone),
        ("email", normalize.email),
        ("credit_code", normalize.credit_code),
        ("wechat_id", normalize.wechat_id),
    ):
        if fields.get(key):
            fields[key] = fn(fields[key], field=key)
        else:
            fields.pop(key, None)
    if fields.get("company"):
        fields["company"] = normalize.company_display_name(fields["company"], field="company")
        fields["name_key"] = normalize.company_key(fields["company"], field="company")
    if fields.get("contact_name"):
        fields["contact_name"] = normalize.person_name(fields["contact_name"], field="contact_name")
    for key in (
        "province",
        "city",
        "industry",
        "product_interest",
        "source",
        "campaign",
        "message",
        "visitor_id",
    ):
        if key in fields:
            fields[key] = normalize.text(fields[key])
    return fields


def check_reachable(fields: dict[str, Any]) -> None:
    """A lead nobody can reach is no lead."""
    if not any(fields.get(k) for k in ("phone", "email", "wechat_id")):
        raise Invalid("give a phone number, an email or a WeChat ID to reach them", field="phone")


def _normalised(data: LeadCreate) -> dict[str, Any]:
    fields = normalised(data.model_dump(exclude={"custom"}, exclude_none=True))
    check_reachable(fields)
    return fields


async def intake(
    session: AsyncSession,
    *,
    actor: Actor,
    data: LeadCreate,
    policy: LeadPolicy,
    fuzzy_threshold: float,
    form_id: int | None = None,
) -> tuple[Lead, bool, list[LeadMatch]]:
    """A new lead, or the open one this person already has. Says what matched and why."""
    actor.require_scope(Scope.leads_write)
    fields = _normalised(data)
    existing = await matching.open_lead(
        session,
        phone=fields.get("phone"),
        email=fields.get("email"),
        wechat_id=fields.get("wechat_id"),
    )
    if existing is None:
        existing = await _recently_closed(session, fields=fields, policy=policy)
    if existing is not None:
        match = LeadMatch(
            kind="lead",
            id=existing.id,
            field=_shared_key(existing, fields),
            detail="the same person has an open enquiry",
        )
        audit.record(
            session,
            actor=actor,
            action="resubmit",
            entity=ENTITY,
            entity_id=existing.id,
            note={"source": fields.get("source")},
        )
        return existing, False, [match]

    custom = await custom_field.validate_values(session, entity=ENTITY, values=data.custom or {})
    lead, matches = await create(
        session, actor=actor, fields=fields, custom=custom, fuzzy_threshold=fuzzy_threshold,
        form_id=form_id,
    )
    return lead, True, matches


async def create(
    session: AsyncSession,
    *,
    actor: Actor,
    fields: dict[str, Any],
    custom: dict[str, Any],
    fuzzy_threshold: float,
    form_id: int | None = None,
    disqualify_reason: str | None = None,
    note: dict[str, Any] | None = None,
) -> tuple[Lead, list[LeadMatch]]:
    """A new lead from normalised fields, matched to the customers it belongs to.

    Intake creates open leads; an import may bring in one already closed (`disqualify_reason`),
    which never gets a workflow."""
    matches = await matching.customers(
        session,
        credit_code=fields.get("credit_code"),
        phone=fields.get("phone"),
        email=fields.get("email"),
        company_key=fields.get("name_key"),
        fuzzy_threshold=fuzzy_threshold,
    )
    status = LeadStatus.disqualified if disqualify_reason else LeadStatus.new
    lead = Lead(**fields, custom=custom, form_id=form_id, status=status.value,
                disqualify_reason=disqualify_reason)
    await _attach(session, lead, matches)
    session.add(lead)
    await session.flush()
    await behaviour.rescore(session, lead=lead)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity=ENTITY,
        entity_id=lead.id,
        after=LeadRead.model_validate(lead).model_dump(
            include=set(fields) | {"customer_id", "contact_id"}
            | ({"status", "disqualify_reason"} if disqualify_reason else set())
        ),
        note=note,
    )
    if lead.customer_id is not None:
        timeline.add(
            session,
            customer_id=lead.customer_id,
            kind="lead.created",
            actor=actor,
            summary=lead.message or lead.product_interest or lead.source or "",
            ref=(ENTITY, lead.id),
            detail={"match": lead.match},
        )
    return lead, matches


def _shared_key(lead: Lead, fields: dict[str, Any]) -> str:
    return next(
        (
            k
            for k in ("phone", "email", "wechat_id")
            if fields.get(k) and getattr(lead, k) == fields[k]
        ),
        "phone",
    )


async def _recently_closed(
    session: AsyncSession, *, fields: dict[str, Any], policy: LeadPolicy
) -> Lead | None:
    """A double submission right after a lead was closed is still that lead, not a new one."""
    since = utcnow() - policy.resubmission_window
    keys = [getattr(Lead, k) == fields[k] for k in ("phone", "email", "wechat_id") if fields.get(k)]
    return await session.scalar(
        select(Lead).where(or_(*keys), Lead.created_at >= since).order_by(Lead.id.desc()).limit(1)
    )


async def _attach(session: AsyncSession, lead: Lead, matches: list[LeadMatch]) -> None:
    """Link to the matched customer; its owner, if active, is the owner the lead should get."""
    if not matches:
        return
    first = matches[0]
    if first.kind == "contact":
        contact = await session.get(Contact, first.id)
        lead.contact_id = first.id
        lead.customer_id = contact.customer_id if contact else None
    else:
        lead.customer_id = first.id
    customer = await session.get(Customer, lead.customer_id) if lead.customer_id else None
    owner = await session.get(User, customer.owner_id) if customer and customer.owner_id else None
    lead.match = {
        **first.model_dump(),
        "owner_id": owner.id if owner is not None and owner.active else None,
    }


async def get(session: AsyncSession, *, actor: Actor, lead_id: int) -> Lead:
    lead = await session.scalar(select(Lead).where(Lead.id == lead_id, visible(actor)))
    if lead is None:
        raise NotFound("no such lead", field="lead_id")
    return lead


def _where(actor: Actor, query: LeadQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [visible(actor)]
    if query.status is not None:
        where.append(Lead.status == query.status.value)
    if query.mine:
        where.append(Lead.owner_id == actor.user_id)
    if query.owner_id is not None:
        where.append(Lead.owner_id == query.owner_id)
    if query.source:
        where.append(Lead.source == query.source)
    if query.overdue:
        where.append(Lead.sla_due_at < utcnow())
    if query.q and query.q.strip():
        text = query.q.strip()
        where.append(
            or_(
                Lead.contact_name.contains(text, autoescape=True),
                Lead.company.contains(text, autoescape=True),
                Lead.phone.contains(text, autoescape=True),
                Lead.email.contains(text.lower(), autoescape=True),
            )
        )
    return where


def listed(*, actor: Actor, query: LeadQuery) -> Select[Any]:
    """Every lead the list `query` describes, in its order and unpaged (an export pages it)."""
    order = {
        "sla_due_at": (Lead.sla_due_at.is_(None), Lead.sla_due_at, Lead.id),
        "created_at": (Lead.created_at, Lead.id),
        "-created_at": (Lead.created_at.desc(), Lead.id.desc()),
        "-score": (Lead.score.desc(), Lead.id),
    }[query.sort]
    return select(Lead).where(*_where(actor, query)).order_by(*order)


async def search(session: AsyncSession, *, actor: Actor, query: LeadQuery) -> LeadPage:
    total = await session.scalar(select(func.count(Lead.id)).where(*_where(actor, query)))
    rows = await session.scalars(
        listed(actor=actor, query=query).offset((query.page - 1) * query.size).limit(query.size)
    )
    return LeadPage(
        items=[LeadRead.model_validate(r) for r in rows],
        total=total or 0,
        page=query.page,
        size=query.size,
    )


def touch(lead: Lead, at: datetime | None = None) -> None:
    lead.last_activity_at = at or utcnow()
