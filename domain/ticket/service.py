"""Ticket service functions: opening with requester matching, reads, comments, calls.

Transitions (reply, resolve, reopen …) are written by the ticket workflow's activities only, so
each one is serialised and on record in the workflow history.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, custom_field, normalize, timeline
from domain.access import Actor, Role
from domain.customer import Contact, Customer
from domain.db import utcnow
from domain.errors import Invalid, NotFound
from domain.ticket.models import CallRecord, Ticket, TicketComment
from domain.ticket.rules import TicketPolicy, fold
from domain.ticket.schemas import CallCreate, TicketCreate, TicketPage, TicketQuery, TicketRead
from domain.user import Team, User

ENTITY = "ticket"


def visible(actor: Actor) -> ColumnElement[bool]:
    """Agents see their team's queue and their own tickets, supervisors their teams', sales
    reps the tickets of customers they own; admins and API keys all."""
    if actor.scopes is not None or actor.role is Role.admin:
        return Ticket.id.is_not(None)
    if actor.role is Role.service_manager:
        return or_(
            Ticket.team_id.in_(sorted(actor.managed_team_ids | {actor.team_id or 0})),
            Ticket.team_id.is_(None),
            Ticket.assignee_id == actor.user_id,
        )
    if actor.role is Role.service:
        mine = Ticket.assignee_id == actor.user_id
        return or_(mine, Ticket.team_id == actor.team_id) if actor.team_id else mine
    if actor.role in (Role.sales, Role.sales_manager):
        owned = select(Customer.id).where(Customer.owner_id == actor.user_id)
        return Ticket.customer_id.in_(owned)
    return false()


async def match_requester(
    session: AsyncSession, *, email: str | None, phone: str | None
) -> tuple[int | None, int | None, str | None]:
    """(customer id, contact id, name) of whoever has this address or number, else Nones."""
    for value, contact_keys, customer_key in (
        (email, (Contact.email,), Customer.email),
        (phone, (Contact.mobile, Contact.phone), Customer.phone),
    ):
        if not value:
            continue
        contact = await session.scalar(
            select(Contact)
            .join(Customer, Customer.id == Contact.customer_id)
            .where(or_(*(k == value for k in contact_keys)), Customer.deleted_at.is_(None))
            .order_by(Contact.id)
            .limit(1)
        )
        if contact is not None:
            return contact.customer_id, contact.id, contact.name
        customer = await session.scalar(
            select(Customer)
            .where(customer_key == value, Customer.deleted_at.is_(None))
            .order_by(Customer.id)
            .limit(1)
        )
        if customer is not None:
            return customer.id, None, customer.name
    return None, None, None


async def _requester(session: AsyncSession, ticket: Ticket, data: TicketCreate) -> None:
    """Check the given customer and contact, or find them from the requester's address."""
    if data.requester_email:
        ticket.requester_email = normalize.email(data.requester_email, field="requester_email")
    if data.requester_phone:
        ticket.requester_phone = normalize.phone(data.requester_phone, field="requester_phone")
    if data.contact_id is not None:
        contact = await session.get(Contact, data.contact_id)
        if contact is None or (
            data.customer_id is not None and contact.customer_id != data.customer_id
        ):
            raise Invalid("no such contact of this customer", field="contact_id")
        ticket.contact_id, ticket.customer_id = contact.id, contact.customer_id
        ticket.requester_email = ticket.requester_email or contact.email
        ticket.requester_name = ticket.requester_name or contact.name
    elif data.customer_id is not None:
        customer = await session.get(Customer, data.customer_id)
        if customer is None or customer.deleted_at is not None:
            raise Invalid("no such customer", field="customer_id")
        ticket.customer_id = customer.id
        ticket.requester_email = ticket.requester_email or customer.email
    else:
        customer_id, contact_id, name = await match_requester(
            session, email=ticket.requester_email, phone=ticket.requester_phone
        )
        ticket.customer_id, ticket.contact_id = customer_id, contact_id
        ticket.requester_name = ticket.requester_name or name


async def open_ticket(
    session: AsyncSession,
    *,
    actor: Actor,
    data: TicketCreate,
    policy: TicketPolicy,
    source_key: str | None = None,
    thread_id: str | None = None,
) -> tuple[Ticket, bool]:
    """A new ticket, or the one already opened from the same source (a redelivered mail, a
    call posted twice): (ticket, created)."""
    if source_key is not None:
        existing = await session.scalar(select(Ticket).where(Ticket.source_key == source_key))
        if existing is not None:
            return existing, False
    kind = next((t for t in policy.types if fold(t) == fold(data.type)), None)
    if kind is None:
        raise Invalid("choose a type from: " + ", ".join(policy.types), field="type")
    custom = await custom_field.validate_values(session, entity=ENTITY, values=data.custom or {})
    ticket = Ticket(
        type=kind,
        priority=data.priority.value,
        channel=data.channel.value,
        product=normalize.text(data.product) or None,
        subject=" ".join(data.subject.split()) or "—",
        description=normalize.text(data.description),
        requester_name=normalize.text(data.requester_name) or None,
        custom=custom,
        source_key=source_key,
        thread_id=thread_id,
    )
    await _requester(session, ticket, data)
    session.add(ticket)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity=ENTITY,
        entity_id=ticket.id,
        after=TicketRead.model_validate(ticket).model_dump(
            include={"type", "priority", "channel", "subject", "customer_id", "contact_id"}
        ),
    )
    on_timeline(session, ticket, actor, "ticket.created", ticket.subject)
    return ticket, True


def on_timeline(
    session: AsyncSession,
    ticket: Ticket,
    actor: Actor,
    kind: str,
    summary: str,
    detail: dict[str, Any] | None = None,
) -> None:
    if ticket.customer_id is not None:
        timeline.add(
            session,
            customer_id=ticket.customer_id,
            kind=kind,
            actor=actor,
            summary=summary,
            ref=(ENTITY, ticket.id),
            detail=detail,
        )


async def get(session: AsyncSession, *, actor: Actor, ticket_id: int) -> Ticket:
    ticket = await session.scalar(select(Ticket).where(Ticket.id == ticket_id, visible(actor)))
    if ticket is None:
        raise NotFound("no such ticket", field="ticket_id")
    return ticket


def _where(actor: Actor, query: TicketQuery) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [visible(actor)]
    for column, value in (
        (Ticket.status, query.status.value if query.status else None),
        (Ticket.priority, query.priority.value if query.priority else None),
        (Ticket.type, query.type),
        (Ticket.assignee_id, query.assignee_id),
        (Ticket.team_id, query.team_id),
        (Ticket.customer_id, query.customer_id),
        (Ticket.sla_breached, query.breached),
    ):
        if value is not None:
            where.append(column == value)
    if query.mine:
        where.append(Ticket.assignee_id == actor.user_id)
    if query.overdue:
        where.append(and_(Ticket.sla_due_at < utcnow(), Ticket.sla_paused.is_(False)))
    if query.q and query.q.strip():
        text = query.q.strip()
        where.append(
            or_(
                Ticket.subject.contains(text, autoescape=True),
                Ticket.requester_email.contains(text.lower(), autoescape=True),
                Ticket.requester_name.contains(text, autoescape=True),
            )
        )
    return where


def listed(*, actor: Actor, query: TicketQuery) -> Select[Any]:
    """Every ticket the list `query` describes, in its order and unpaged (an export pages it)."""
    order = {
        "sla_due_at": (Ticket.sla_due_at.is_(None), Ticket.sla_due_at, Ticket.id),
        "created_at": (Ticket.created_at, Ticket.id),
        "-created_at": (Ticket.created_at.desc(), Ticket.id.desc()),
    }[query.sort]
    return select(Ticket).where(*_where(actor, query)).order_by(*order)


async def search(session: AsyncSession, *, actor: Actor, query: TicketQuery) -> TicketPage:
    total = await session.scalar(select(func.count(Ticket.id)).where(*_where(actor, query)))
    rows = await session.scalars(
        listed(actor=actor, query=query).offset((query.page - 1) * query.size).limit(query.size)
    )
    return TicketPage(
        items=[TicketRead.model_validate(r) for r in rows],
        total=total or 0,
        page=query.page,
        size=query.size,
    )


async def comments(session: AsyncSession, *, actor: Actor, ticket_id: int) -> list[TicketComment]:
    await get(session, actor=actor, ticket_id=ticket_id)
    rows = await session.scalars(
        select(TicketComment).where(TicketComment.ticket_id == ticket_id).order_by(TicketComment.id)
    )
    return list(rows)


async def add_note(
    session: AsyncSession, *, actor: Actor, ticket_id: int, body: str
) -> TicketComment:
    """An internal note: staff only, no SLA effect, so a plain record write."""
    actor.require_role(Role.service, Role.service_manager)
    ticket = await get(session, actor=actor, ticket_id=ticket_id)
    note = TicketComment(
        ticket_id=ticket.id,
        public=False,
        author_id=actor.user_id,
        author_name=actor.name,
        body=body,
    )
    session.add(note)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="note",
        entity=ENTITY,
        entity_id=ticket.id,
        note={"comment_id": note.id},
    )
    return note


async def add_customer_comment(
    session: AsyncSession,
    *,
    actor: Actor,
    ticket: Ticket,
    body: str,
    author: str,
    message_id: str | None = None,
) -> tuple[TicketComment, bool]:
    """The requester's words (a mail reply): (comment, created); a redelivery is not new."""
    if message_id is not None:
        existing = await session.scalar(
            select(TicketComment).where(TicketComment.message_id == message_id)
        )
        if existing is not None:
            return existing, False
    comment = TicketComment(
        ticket_id=ticket.id,
        public=True,
        from_customer=True,
        author_name=author[:254],
        body=body,
        message_id=message_id,
    )
    session.add(comment)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="customer_reply",
        entity=ENTITY,
        entity_id=ticket.id,
        note={"comment_id": comment.id},
    )
    on_timeline(session, ticket, actor, "ticket.customer_reply", body[:200])
    return comment, True


async def record_call(
    session: AsyncSession, *, actor: Actor, data: CallCreate
) -> tuple[CallRecord, bool]:
    """Keep a call-centre record once, matched to the caller's customer by phone."""
    existing = await session.scalar(select(CallRecord).where(CallRecord.call_id == data.call_id))
    if existing is not None:
        return existing, False
    caller = normalize.phone(data.caller, field="caller")
    recording = (
        normalize.url(data.recording_url, field="recording_url") if data.recording_url else None
    )
    if data.ticket_id is not None and await session.get(Ticket, data.ticket_id) is None:
        raise Invalid("no such ticket", field="ticket_id")
    customer_id, contact_id, _name = await match_requester(session, email=None, phone=caller)
    call = CallRecord(
        call_id=data.call_id,
        caller=caller,
        direction=data.direction,
        duration_seconds=data.duration_seconds,
        recording_url=recording,
        intent=normalize.text(data.intent) or None,
        started_at=data.started_at,
        customer_id=customer_id,
        contact_id=contact_id,
        ticket_id=data.ticket_id,
    )
    session.add(call)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity="call",
        entity_id=call.id,
        after={"caller": caller, "ticket_id": data.ticket_id, "customer_id": customer_id},
    )
    if customer_id is not None:
        timeline.add(
            session,
            customer_id=customer_id,
            kind=f"call.{data.direction}",
            actor=actor,
            at=data.started_at,
            summary=call.intent or "",
            ref=("call", call.id),
            detail={
                "duration_seconds": data.duration_seconds,
                "ticket_id": data.ticket_id,
                "recording_url": recording,
            },
        )
    return call, True


async def supervisor_of(session: AsyncSession, ticket: Ticket) -> int | None:
    """The manager of the ticket's team, if active."""
    team = await session.get(Team, ticket.team_id) if ticket.team_id else None
    manager = await session.get(User, team.manager_id) if team and team.manager_id else None
    return manager.id if manager is not None and manager.active else None
