"""Ticket pages for service agents and supervisors: my tickets (or my team's queue) with the
promise that falls due next, one ticket with its SLA clocks, thread, files and the actions its
state allows, and a compact list on the customer's profile.

Every transition (reply, start, wait, resolve, reopen, close, reassign) calls the API's own
route function, so it is the same workflow Update with the same validator; a refusal is shown
next to the actions in the user's language with the API's status. Internal notes and uploads
are the API's plain record writes.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as FormFile

from api import ticket as ticket_routes
from api.pages.base import (
    Page,
    Problems,
    due_text,
    record_id,
    redirect,
    span,
    status_of,
    submit,
    view,
)
from api.pages.refusal import Refusal, plain_text, through_workflow
from domain import customer, policy, user
from domain.access import Role
from domain.db import utcnow
from domain.errors import DomainError, Invalid
from domain.lead.schemas import Caller
from domain.policy import PolicyKind
from domain.ticket import service as tickets
from domain.ticket import sla
from domain.ticket.lifecycle import Action, Ownership
from domain.ticket.models import Priority, TicketStatus
from domain.ticket.rules import SlaTarget, TicketPolicy
from domain.ticket.schemas import (
    CommentCreate,
    Reassign,
    Reopen,
    Resolve,
    TicketPage,
    TicketQuery,
    TicketRead,
)
from domain.ticket.transitions import Refused as NotAllowed
from domain.ticket.transitions import check

router = APIRouter(include_in_schema=False)

SERVICE = (Role.service, Role.service_manager)  # admins pass require_role as well
PAGE_SIZE = 20
PROFILE_ROWS = 10
BUTTONS = (
    Action.start,
    Action.reply,
    Action.wait,
    Action.resolve,
    Action.reopen,
    Action.close,
    Action.reassign,
)
QUERY_FILTERS = ("q", "status", "priority", "type", "customer_id")
STATE_REFUSAL = re.compile(r"^cannot (?P<action>\w+) a ticket that is (?P<status>\w+)$")


def refusal_text(page: Page, message: str) -> str:
    """A refused transition in words: what could not be done to a ticket in which state."""
    if found := STATE_REFUSAL.match(message):
        t = page.t
        return t(
            "ticket.refused_state",
            action=t.choice("ticket_verb", found["action"]),
            status=t.choice("ticket_status", found["status"]),
        )
    return plain_text(page, message)


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    return text or None


async def _user_names(page: Page) -> dict[int, str]:
    return {u.id: u.display_name for u in await user.list_users(page.session)}


async def _customer_names(page: Page, ids: set[int | None]) -> dict[int, str]:
    """Names of the customers this person may see; others show the requester only."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await page.session.execute(
        select(customer.Customer.id, customer.Customer.name).where(
            customer.Customer.id.in_(wanted), customer.visible(page.me)
        )
    )
    return {row_id: name for row_id, name in rows.all()}


@dataclass
class Due:
    """The next promise on a list row: 还剩 12 分钟 / 已逾期 3 小时, or paused."""

    text: str
    late: bool
    target: str
    at: str


def _due(page: Page, row: TicketRead, now: datetime) -> Due | None:
    t = page.t
    if row.sla_due_at is not None:
        return Due(
            text=due_text(row.sla_due_at, now, t),
            late=row.sla_due_at < now,
            target=t.choice("sla_target", row.sla_target),
            at=page.when(row.sla_due_at),
        )
    if row.sla_paused:
        return Due(text=t("ticket.sla_paused"), late=False, target="", at="")
    return None


# --- the list ------------------------------------------------------------------------------


def _filters(page: Page) -> dict[str, str]:
    params = page.request.query_params
    mine_default = "1" if page.me.role is Role.service else "0"
    return {
        "q": params.get("q", "").strip(),
        "status": params.get("status", "").strip(),
        "priority": params.get("priority", "").strip(),
        "type": params.get("type", "").strip(),
        "breached": "1" if params.get("breached") == "1" else "",
        "overdue": "1" if params.get("overdue") == "1" else "",
        "mine": "1" if params.get("mine", mine_default) == "1" else "0",
        "customer_id": params.get("customer_id", "").strip(),
    }


def _title(page: Page, mine: bool) -> str:
    if mine:
        return page.t("tickets.title_mine")
    return page.t("tickets.title_all" if page.me.is_admin else "tickets.title_team")


async def _types(page: Page) -> tuple[str, ...]:
    _version, rules = await policy.current(page.session, kind=PolicyKind.ticket)
    assert isinstance(rules, TicketPolicy)
    return rules.types


@router.get("/tickets")
async def ticket_list(request: Request) -> Response:
    async def body(page: Page) -> Response:
        page.me.require_role(*ticket_routes.STAFF)
        filters = _filters(page)
        raw = page.request.query_params.get("page", "1")
        number = min(int(raw), 100_000) if raw.isdigit() and raw != "0" else 1
        wanted: dict[str, Any] = {k: v for k, v in filters.items() if v and k in QUERY_FILTERS}
        wanted.update(
            breached=True if filters["breached"] else None,
            overdue=bool(filters["overdue"]),
            mine=filters["mine"] == "1",
            page=number,
            size=PAGE_SIZE,
        )
        problems = Problems()
        try:
            query = TicketQuery.model_validate(wanted)
            result = await tickets.search(page.session, actor=page.me, query=query)
        except (ValidationError, DomainError) as exc:
            problems = page.problems(exc)
            query = TicketQuery(size=PAGE_SIZE)
            result = TicketPage(items=[], total=0, page=1, size=PAGE_SIZE)
        now = utcnow()

        def link(**change: Any) -> str:
            merged = {**filters, **change}
            return "/tickets?" + urlencode({k: v for k, v in merged.items() if v})

        return page.render(
            "tickets/list.html",
            title=_title(page, filters["mine"] == "1"),
            result=result,
            filters=filters,
            statuses=list(TicketStatus),
            priorities=list(Priority),
            types=await _types(page),
            users=await _user_names(page),
            customers=await _customer_names(page, {r.customer_id for r in result.items}),
            due=lambda row: _due(page, row, now),
            pages=max(1, -(-result.total // PAGE_SIZE)),
            current=query.page,
            page_link=lambda n: link(page=n),
            problems=problems,
        )

    return await view(request, body)


# --- one ticket ----------------------------------------------------------------------------


@dataclass
class Clock:
    """One SLA promise as the ticket page shows it."""

    target: str
    state: str
    """none · running · late · paused · met"""
    text: str
    due: str
    breached: bool


def _clocks(page: Page, row: TicketRead, stored: dict[str, Any], now: datetime) -> list[Clock]:
    """First response, next response and resolution: due, remaining, paused, met, breached."""
    t = page.t
    clock = sla.SlaClock.model_validate(stored or {})
    shown = []
    for target in SlaTarget:
        label = t.choice("sla_target", target)
        promise = clock.promises.get(target)
        if promise is None:
            shown.append(Clock(label, "none", t("ticket.clock_none"), "", False))
            continue
        due_at: datetime | None = getattr(row, f"{target.value}_due_at")
        if promise.met_at is not None:
            state, text = "met", t("ticket.clock_met", at=page.when(promise.met_at))
        elif clock.paused_at is not None:
            state, text = "paused", t("ticket.clock_paused", at=page.when(clock.paused_at))
            if target is SlaTarget.resolution and row.sla_remaining_seconds is not None:
                left = span(row.sla_remaining_seconds, t)
                text += t("common.colon") + t("ticket.clock_paused_left", span=left)
        elif due_at is not None:
            state = "late" if due_at < now else "running"
            text = due_text(due_at, now, t)
        else:
            state, text = "none", t("ticket.clock_none")
        shown.append(
            Clock(label, state, text, page.when(due_at) if due_at else "", promise.breached)
        )
    return shown


def _allowed(page: Page, row: TicketRead) -> dict[str, bool]:
    """The buttons to show: the transition rules the workflow's validators run, on the row."""
    caller = Caller.of(page.me)
    ownership = Ownership(assignee_id=row.assignee_id, team_id=row.team_id)
    allowed: dict[str, bool] = {}
    for action in BUTTONS:
        try:
            check(action, row.status, caller, ownership)
        except NotAllowed:
            allowed[action.value] = False
        else:
            allowed[action.value] = True
    me = page.me
    allowed["note"] = me.role in (Role.admin, *SERVICE)
    allowed["upload"] = me.role in (Role.admin, *ticket_routes.STAFF)
    return allowed


def _agent_choices(page: Page, users: list[user.User], row: TicketRead) -> list[tuple[int, str]]:
    """Whom a supervisor may give the ticket: active service people of their teams (all, for
    an admin), never the current assignee."""
    me = page.me
    teams = me.managed_team_ids | ({me.team_id} if me.team_id else set())
    chosen = [
        u
        for u in users
        if u.active
        and u.role in (Role.service.value, Role.service_manager.value)
        and u.id != row.assignee_id
        and (me.is_admin or u.team_id in teams or u.id == me.user_id)
    ]
    return [(u.id, u.display_name) for u in sorted(chosen, key=lambda u: u.display_name)]


async def _render_ticket(
    page: Page,
    ticket_id: int,
    *,
    failed: str | None = None,
    values: Mapping[str, Any] | None = None,
    problems: Problems | None = None,
    refusal: str | None = None,
    status: int = 200,
) -> Response:
    page.me.require_role(*ticket_routes.STAFF)
    stored = await tickets.get(page.session, actor=page.me, ticket_id=ticket_id)
    row = TicketRead.model_validate(stored)
    users = await user.list_users(page.session)
    team = await page.session.get(user.Team, row.team_id) if row.team_id else None
    now = utcnow()
    empty = Problems()
    return page.render(
        "tickets/detail.html",
        status=status,
        row=row,
        customer_name=(await _customer_names(page, {row.customer_id})).get(row.customer_id or 0),
        team=team,
        names={u.id: u.display_name for u in users},
        clocks=_clocks(page, row, stored.sla, now),
        comments=await tickets.comments(page.session, actor=page.me, ticket_id=row.id),
        attachments=await ticket_routes.list_attachments(
            ticket_id=row.id, actor=page.me, session=page.session
        ),
        can=_allowed(page, row),
        agent_options=_agent_choices(page, users, row),
        values_of=lambda form: (values or {}) if form == failed else {},
        problems_of=lambda form: (problems or empty) if form == failed else empty,
        refusal=refusal,
        span_of=lambda seconds: span(seconds, page.t),
    )


@router.get("/tickets/{ticket_id}")
async def ticket_page(request: Request, ticket_id: str) -> Response:
    async def body(page: Page) -> Response:
        return await _render_ticket(page, record_id(ticket_id, "ticket_id"))

    return await view(request, body)


Step = Callable[[Page, FormData, dict[str, Any]], Awaitable[str]]


async def _route_args(page: Page, number: int) -> dict[str, Any]:
    """What the API's transition routes take, for the signed-in person of this page."""
    return {
        "request": page.request,
        "ticket_id": number,
        "actor": page.me,
        "session": page.session,
        "temporal": await page.request.app.state.temporal.client(),
        "settings": page.settings,
    }


async def _act(request: Request, ticket_id: str, form_name: str, step: Step) -> Response:
    """One form on the ticket page: the API's route, then back to the ticket with a flash; a
    problem or refusal renders the page again with it beside that form."""

    async def action(page: Page, form: FormData) -> Response:
        page.me.require_role(*ticket_routes.STAFF)
        number = record_id(ticket_id, "ticket_id")
        flash = await step(page, form, await _route_args(page, number))
        return redirect(f"/tickets/{number}", flash=flash)

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        refusal = exc.message if isinstance(exc, Refusal) else None
        return await _render_ticket(
            page,
            record_id(ticket_id, "ticket_id"),
            failed=form_name,
            values={k: v for k, v in form.items() if isinstance(v, str)},
            problems=None if refusal else page.problems(exc),
            refusal=refusal,
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender, own_fields=("ticket_id",))


def _workflow(page: Page, call: Callable[[], Awaitable[TicketRead]]) -> Awaitable[TicketRead]:
    return through_workflow(page, call, refusal_text)


@router.post("/tickets/{ticket_id}/reply")
async def reply(request: Request, ticket_id: str) -> Response:
    """A public reply, mailed to the requester; optionally the ticket then waits on them."""

    async def step(page: Page, form: FormData, args: dict[str, Any]) -> str:
        data = CommentCreate.model_validate(
            {
                "body": _text(form, "body") or "",
                "public": True,
                "wait_for_customer": form.get("wait_for_customer") == "1",
            }
        )
        await _workflow(page, lambda: ticket_routes.comment(**args, data=data))
        return "ticket_replied"

    return await _act(request, ticket_id, "reply", step)


@router.post("/tickets/{ticket_id}/note")
async def note(request: Request, ticket_id: str) -> Response:
    """An internal note: staff only, no mail, no effect on the clocks."""

    async def step(page: Page, form: FormData, args: dict[str, Any]) -> str:
        data = CommentCreate.model_validate({"body": _text(form, "body") or "", "public": False})
        await ticket_routes.comment(**args, data=data)
        return "ticket_noted"

    return await _act(request, ticket_id, "note", step)


def _simple(action: Action, call: Callable[..., Awaitable[TicketRead]]) -> Step:
    async def step(page: Page, form: FormData, args: dict[str, Any]) -> str:
        await _workflow(page, lambda: call(**args))
        return f"ticket_{action.value}"

    return step


@router.post("/tickets/{ticket_id}/start")
async def start(request: Request, ticket_id: str) -> Response:
    return await _act(request, ticket_id, "start", _simple(Action.start, ticket_routes.start))


@router.post("/tickets/{ticket_id}/wait")
async def wait(request: Request, ticket_id: str) -> Response:
    return await _act(request, ticket_id, "wait", _simple(Action.wait, ticket_routes.wait))


@router.post("/tickets/{ticket_id}/close")
async def close(request: Request, ticket_id: str) -> Response:
    return await _act(request, ticket_id, "close", _simple(Action.close, ticket_routes.close))


@router.post("/tickets/{ticket_id}/resolve")
async def resolve(request: Request, ticket_id: str) -> Response:
    async def step(page: Page, form: FormData, args: dict[str, Any]) -> str:
        data = Resolve.model_validate({"note": _text(form, "note")})
        await _workflow(page, lambda: ticket_routes.resolve(**args, data=data))
        return "ticket_resolve"

    return await _act(request, ticket_id, "resolve", step)


@router.post("/tickets/{ticket_id}/reopen")
async def reopen(request: Request, ticket_id: str) -> Response:
    async def step(page: Page, form: FormData, args: dict[str, Any]) -> str:
        data = Reopen.model_validate({"reason": _text(form, "reason")})
        await _workflow(page, lambda: ticket_routes.reopen(**args, data=data))
        return "ticket_reopen"

    return await _act(request, ticket_id, "reopen", step)


@router.post("/tickets/{ticket_id}/reassign")
async def reassign(request: Request, ticket_id: str) -> Response:
    async def step(page: Page, form: FormData, args: dict[str, Any]) -> str:
        data = Reassign.model_validate(
            {"assignee_id": _text(form, "assignee_id"), "note": _text(form, "note")}
        )
        await _workflow(page, lambda: ticket_routes.reassign(**args, data=data))
        return "ticket_reassign"

    return await _act(request, ticket_id, "reassign", step)


@router.post("/tickets/{ticket_id}/attachments")
async def upload(request: Request, ticket_id: str) -> Response:
    """A file for the ticket, sniffed and size-checked exactly as the API does."""

    async def step(page: Page, form: FormData, args: dict[str, Any]) -> str:
        sent = form.get("file")
        if not isinstance(sent, FormFile) or not sent.filename:
            raise Invalid("choose a file", field="file")
        await ticket_routes.upload(
            ticket_id=args["ticket_id"],
            file=UploadFile(sent.file, size=sent.size, filename=sent.filename),
            actor=page.me,
            session=page.session,
            settings=page.settings,
        )
        return "ticket_attached"

    return await _act(request, ticket_id, "upload", step)


# --- on the customer's profile -------------------------------------------------------------


async def customer_tickets(page: Page, customer_id: int) -> dict[str, Any]:
    """The customer's latest tickets the viewer may see, for the profile's compact section."""
    found = await tickets.search(
        page.session,
        actor=page.me,
        query=TicketQuery(customer_id=customer_id, sort="-created_at", size=PROFILE_ROWS),
    )
    return {"items": found.items, "total": found.total}
