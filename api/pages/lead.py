"""Lead pages: my (or my team's) leads with their SLA countdown, the public pool, one lead.

A new lead is captured exactly as the API captures it, and every transition (contact, qualify,
disqualify, convert, reassign, claim) goes through the lead's workflow by calling the API's own
route functions. A refusal from the workflow is shown on the page in the user's language, with
the status the API would answer (409, 403, 422), never as a 500.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api import lead as lead_routes
from api.errors import STATUS_FOR_REFUSAL
from api.pages.base import Page, Problems, record_id, redirect, span, status_of, submit, view
from domain import audit, lead, policy, user
from domain.access import Role
from domain.db import utcnow
from domain.errors import DomainError
from domain.lead.lifecycle import Action, Ownership
from domain.lead.models import OPEN_STATUSES, LeadStatus, SlaAction
from domain.lead.rules import LeadPolicy
from domain.lead.schemas import (
    Caller,
    ContactLogged,
    Convert,
    Disqualify,
    LeadCreate,
    LeadPage,
    LeadQuery,
    LeadRead,
    Reassign,
)
from domain.lead.transitions import Refused as NotAllowed
from domain.lead.transitions import check
from domain.policy import PolicyKind

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
HISTORY_SIZE = 30
SALES = (Role.sales, Role.sales_manager)  # admins pass require_role as well
CAPTURE_FIELDS = (
    "contact_name",
    "company",
    "phone",
    "email",
    "wechat_id",
    "credit_code",
    "province",
    "city",
    "industry",
    "product_interest",
    "source",
    "campaign",
    "message",
)
PRIORITIES = ("high", "normal", "low")
MATCH_FIELDS = ("phone", "email", "wechat_id", "credit_code", "company")
MATCHED = {
    "customer": "lead.matched_customer",
    "contact": "lead.matched_contact",
    "lead": "lead.matched_lead",
}
RULE_NAMES = {
    "existing customer owner": "lead.rule_existing_owner",
    "by hand": "lead.rule_by_hand",
    "claimed from pool": "lead.rule_claimed",
}

# Workflow refusals whose message carries a value; the fixed ones are `error.<message>` keys.
STATE_REFUSAL = re.compile(r"^cannot (?P<action>\w+) a lead that is (?P<status>\w+)$")
COOLDOWN_REFUSAL = re.compile(r"^this lead was taken from you; .* from (?P<at>\S+)$")
CAP_REFUSAL = re.compile(r"^you already have (?P<n>\d+) open leads$")
DAILY_REFUSAL = re.compile(r"^you have claimed (?P<n>\d+) leads today$")


class Refusal(DomainError):
    """The lead's workflow (or its activity) would not make the transition.

    `message` is already in the user's language; `status` is the one the API answers with.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def refusal_text(page: Page, message: str) -> str:
    """A refusal's English message in the user's language, values kept."""
    t = page.t
    if found := STATE_REFUSAL.match(message):
        return t(
            "lead.refused_state",
            action=t.choice("lead_verb", found["action"]),
            status=t.choice("lead_status", found["status"]),
        )
    if found := COOLDOWN_REFUSAL.match(message):
        return t("lead.refused_cooldown", at=page.when(found["at"]))
    if found := CAP_REFUSAL.match(message):
        return t("lead.refused_cap", n=int(found["n"]))
    if found := DAILY_REFUSAL.match(message):
        return t("lead.refused_daily", n=int(found["n"]))
    return t.error(message)


async def _through_workflow(page: Page, step: Callable[[], Awaitable[LeadRead]]) -> LeadRead:
    """Run an API transition; the workflow's refusal becomes a Refusal the page can show."""
    try:
        return await step()
    except WorkflowUpdateFailedError as failed:
        cause = failed.cause
        if not isinstance(cause, ApplicationError):
            raise Refusal(page.t("lead.refused_unknown"), 503) from None
        status = STATUS_FOR_REFUSAL.get(cause.type or "", 409)
        raise Refusal(refusal_text(page, cause.message), status) from None
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            # The workflow has ended: the lead is converted or disqualified by now.
            raise Refusal(page.t("lead.refused_closed"), 409) from None
        raise


# --- shared lookups ------------------------------------------------------------------------


def _text(form: FormData, name: str) -> str | None:
    value = str(form.get(name) or "").strip()
    return value or None


async def _users(page: Page) -> dict[int, user.User]:
    return {u.id: u for u in await user.list_users(page.session)}


def _owner_choices(page: Page, users: Mapping[int, user.User]) -> list[user.User]:
    """Whom a lead may be given: active sales people; a manager's own teams, an admin's all."""
    me = page.me
    sales = [u for u in users.values() if u.active and u.role in (r.value for r in SALES)]
    if not me.is_admin:
        sales = [u for u in sales if u.id == me.user_id or u.team_id in me.managed_team_ids]
    return sorted(sales, key=lambda u: u.display_name)


@dataclass
class Sla:
    text: str
    late: bool
    action: str
    due: str


def _sla(page: Page, row: LeadRead, now: datetime) -> Sla | None:
    """还剩 12 分钟 / 已超时 3 小时, and what happens when it runs out."""
    if row.sla_due_at is None:
        return None
    t = page.t
    delta = (row.sla_due_at - now).total_seconds()
    key = "lead.sla_left" if delta >= 0 else "lead.sla_overdue"
    return Sla(
        text=t(key, span=span(delta, t)),
        late=delta < 0,
        action=t.choice("sla_action", row.sla_next_action),
        due=page.when(row.sla_due_at),
    )


def _match_reason(page: Page, field: str, score: Any = None) -> str:
    t = page.t
    if field == "company":
        try:
            percent = f"{float(score):.0f}"
        except (TypeError, ValueError):
            return t("lead.match_by_company_plain")
        return t("lead.match_by_company", score=percent)
    return t("lead.match_by", field=t(f"field.{field}") if field in MATCH_FIELDS else field)


def _notice(page: Page) -> dict[str, Any] | None:
    """What the "new lead" form answered, from the redirect's query (ids and keys only)."""
    params = page.request.query_params
    by = params.get("by", "")
    reason = _match_reason(page, by, params.get("score")) if by in MATCH_FIELDS else ""
    merged, created = params.get("merged", ""), params.get("created", "")
    if merged.isdigit():
        return {"kind": "merged", "id": int(merged), "reason": reason}
    if not created.isdigit():
        return None
    matched, ref = params.get("matched", ""), params.get("ref", "")
    found = None
    if matched in MATCHED and ref.isdigit() and reason:
        found = page.t(MATCHED[matched], id=ref) + page.t("common.colon") + reason
    customer_id = int(ref) if matched == "customer" and ref.isdigit() else None
    return {"kind": "created", "id": int(created), "found": found, "customer_id": customer_id}


def _title(page: Page) -> str:
    me = page.me
    if me.is_admin:
        return page.t("leads.title_all")
    if me.role is Role.sales_manager:
        return page.t("leads.title_team")
    return page.t("leads.title_mine")


def _page_number(raw: str) -> int:
    return min(int(raw), 100_000) if raw.isdigit() and raw != "0" else 1


# --- my leads ------------------------------------------------------------------------------


async def _render_list(
    page: Page,
    *,
    values: Mapping[str, Any] | None = None,
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    page.me.require_role(*SALES)
    params = page.request.query_params
    filters = {
        "q": params.get("q", "").strip(),
        "status": params.get("status", "").strip(),
        "overdue": "1" if params.get("overdue") == "1" else "",
    }
    wanted: dict[str, Any] = {k: v for k, v in filters.items() if v}
    wanted.update(
        page=_page_number(params.get("page", "1")),
        size=PAGE_SIZE,
        sort="sla_due_at",
        mine=page.me.role is Role.sales,
    )
    filter_problems = Problems()
    try:
        query = LeadQuery.model_validate(wanted)
        result = await lead.service.search(page.session, actor=page.me, query=query)
    except (ValidationError, DomainError) as exc:
        filter_problems = page.problems(exc)
        query = LeadQuery(size=PAGE_SIZE)
        result = LeadPage(items=[], total=0, page=1, size=PAGE_SIZE)
    users = await _users(page)
    now = utcnow()

    def link(**change: Any) -> str:
        merged = {**{k: v for k, v in filters.items() if v}, **change}
        return "/leads?" + urlencode({k: v for k, v in merged.items() if v})

    return page.render(
        "leads/list.html",
        status=status,
        title=_title(page),
        result=result,
        filters=filters,
        statuses=list(LeadStatus),
        users=users,
        sla=lambda row: _sla(page, row, now),
        pages=max(1, -(-result.total // PAGE_SIZE)),
        current=query.page,
        page_link=lambda n: link(page=n),
        filter_problems=filter_problems,
        notice=_notice(page),
        values=values or {"priority": "normal"},
        problems=problems or Problems(),
        priority_options=[(p, page.t.choice("lead_priority", p)) for p in PRIORITIES],
    )


@router.get("/leads")
async def lead_list(request: Request) -> Response:
    return await view(request, _render_list)


@router.post("/leads")
async def create_lead(request: Request) -> Response:
    """The "new lead" form: the API's capture, then its answer (new, or joined to an open one)."""

    async def action(page: Page, form: FormData) -> Response:
        page.me.require_role(*SALES)
        fields = {name: _text(form, name) for name in CAPTURE_FIELDS}
        data = LeadCreate.model_validate(
            {
                **{k: v for k, v in fields.items() if v is not None},
                "priority": _text(form, "priority") or "normal",
            }
        )
        result = await lead_routes.capture(
            page.session,
            await page.request.app.state.temporal.client(),
            page.settings,
            actor=page.me,
            data=data,
        )
        first = result.matches[0] if result.matches else None
        answer: dict[str, Any] = {}
        if first is not None:
            answer = {"matched": first.kind, "ref": first.id, "by": first.field}
            if first.score is not None:
                answer["score"] = first.score
        if result.created:
            return redirect("/leads?" + urlencode({"created": result.lead.id, **answer}))
        merged = {"merged": result.lead.id, "by": first.field if first else ""}
        return redirect("/leads?" + urlencode({k: v for k, v in merged.items() if v}))

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        return await _render_list(
            page,
            values={k: str(v) for k, v in form.items()},
            problems=page.problems(exc),
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender)


# --- the pool ------------------------------------------------------------------------------


async def _render_pool(page: Page, *, refusal: str | None = None, status: int = 200) -> Response:
    page.me.require_role(*SALES)
    number = _page_number(page.request.query_params.get("page", "1"))
    query = LeadQuery(status=LeadStatus.pooled, sort="created_at", page=number, size=PAGE_SIZE)
    result = await lead.service.search(page.session, actor=page.me, query=query)
    return page.render(
        "leads/pool.html",
        status=status,
        result=result,
        pages=max(1, -(-result.total // PAGE_SIZE)),
        current=number,
        page_link=lambda n: f"/pool?page={n}",
        can_claim=page.me.role in SALES,
        refusal=refusal,
    )


@router.get("/pool")
async def pool(request: Request) -> Response:
    return await view(request, _render_pool)


@router.post("/pool/{lead_id}/claim")
async def claim(request: Request, lead_id: str) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        page.me.require_role(*SALES)
        number = record_id(lead_id, "lead_id")
        args = await _route_args(page, number)
        await _through_workflow(page, lambda: lead_routes.claim(**args))
        return redirect(f"/leads/{number}", flash="lead_claimed")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        message = exc.message if isinstance(exc, Refusal) else page.problems(exc).summary()[0]
        return await _render_pool(page, refusal=message, status=status_of(exc))

    return await submit(request, action, rerender=rerender, own_fields=("lead_id",))


# --- one lead ------------------------------------------------------------------------------


def _allowed(page: Page, row: lead.Lead, owner: user.User | None) -> dict[str, bool]:
    """The buttons to show: the transition rules the workflow's validators run, on the row."""
    caller = Caller.of(page.me)
    ownership = Ownership(owner_id=row.owner_id, team_id=owner.team_id if owner else None)
    allowed = {}
    for action in (a for a in Action if a is not Action.pool):
        try:
            check(action, LeadStatus(row.status), caller, ownership)
        except NotAllowed:
            allowed[action.value] = False
        else:
            allowed[action.value] = True
    return allowed


def _breach_text(page: Page, breach: str) -> str:
    """`2.1.notify_manager` (generation.step.action) or `3.cadence.0` as words."""
    parts = breach.split(".")
    if len(parts) > 1 and parts[1] == "cadence":
        return page.t("sla_breach.cadence")
    action = parts[-1]
    if action in SlaAction.__members__:
        return page.t.choice("sla_breach", action)
    return breach


def _history_line(page: Page, entry: audit.AuditLog, users: Mapping[int, user.User]) -> str:
    """What one audit entry of the lead says, briefly."""
    changes = entry.changes or {}
    note = changes.get("_note") or {}
    parts: list[str] = []
    owner = changes.get("owner_id")
    if isinstance(owner, list) and len(owner) == 2:
        after = users.get(owner[1]) if owner[1] is not None else None
        parts.append(
            page.t("lead.history_owner", name=after.display_name)
            if after
            else page.t("lead.history_pool")
        )
    if isinstance(note, dict):
        if note.get("rule"):
            parts.append(page.t("lead.history_rule", rule=_rule_name(page, note["rule"])))
        if note.get("note") and not re.fullmatch(r"\d+\.[\w.]+", str(note["note"])):
            parts.append(str(note["note"]))
    return " · ".join(parts)


def _rule_name(page: Page, rule: str | None) -> str:
    if not rule:
        return ""
    return page.t(RULE_NAMES[rule]) if rule in RULE_NAMES else rule


async def _render_lead(
    page: Page,
    lead_id: int,
    *,
    values: Mapping[str, Any] | None = None,
    problems: Problems | None = None,
    refusal: str | None = None,
    status: int = 200,
) -> Response:
    page.me.require_role(*SALES)
    row = await lead.service.get(page.session, actor=page.me, lead_id=lead_id)
    users = await _users(page)
    owner = users.get(row.owner_id) if row.owner_id else None
    _version, rules = await policy.current(page.session, kind=PolicyKind.lead)
    assert isinstance(rules, LeadPolicy)
    history = await audit.history(
        page.session, entity=lead.service.ENTITY, entity_id=row.id, limit=HISTORY_SIZE
    )
    read = LeadRead.model_validate(row)
    match = row.match or {}
    return page.render(
        "leads/detail.html",
        status=status,
        row=read,
        owner=owner,
        pooled_from=users.get(row.pooled_from_id) if row.pooled_from_id else None,
        match=match,
        match_text=page.t(MATCHED[match["kind"]], id=match.get("id"))
        if match.get("kind") in MATCHED
        else "",
        match_reason=_match_reason(page, match.get("field", ""), match.get("score"))
        if match
        else "",
        match_owner=users.get(match.get("owner_id")) if match.get("owner_id") else None,
        rule=_rule_name(page, row.assigned_rule),
        sla=_sla(page, read, utcnow()),
        breaches=[_breach_text(page, b) for b in row.sla_breaches],
        is_open=LeadStatus(row.status) in OPEN_STATUSES,
        can=_allowed(page, row, owner),
        reasons=[(r, r) for r in rules.disqualify_reasons],
        owner_options=[(u.id, u.display_name) for u in _owner_choices(page, users)],
        history=history,
        history_line=lambda entry: _history_line(page, entry, users),
        user_names={u.id: u.display_name for u in users.values()},
        values=values or {},
        problems=problems or Problems(),
        refusal=refusal,
    )


@router.get("/leads/{lead_id}")
async def lead_page(request: Request, lead_id: str) -> Response:
    async def body(page: Page) -> Response:
        return await _render_lead(page, record_id(lead_id, "lead_id"))

    return await view(request, body)


Step = Callable[[Page, int, FormData, dict[str, Any]], Awaitable[Response]]


async def _route_args(page: Page, number: int) -> dict[str, Any]:
    """What the API's transition routes take, for the signed-in person of this page."""
    return {
        "request": page.request,
        "lead_id": number,
        "actor": page.me,
        "session": page.session,
        "temporal": await page.request.app.state.temporal.client(),
        "settings": page.settings,
    }


async def _transition(request: Request, lead_id: str, step: Step) -> Response:
    """A button on the lead page: the API's transition, then back to the lead (or onwards)."""

    async def action(page: Page, form: FormData) -> Response:
        page.me.require_role(*SALES)
        number = record_id(lead_id, "lead_id")
        return await step(page, number, form, await _route_args(page, number))

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        refusal = exc.message if isinstance(exc, Refusal) else None
        return await _render_lead(
            page,
            record_id(lead_id, "lead_id"),
            values={k: str(v) for k, v in form.items()},
            problems=None if refusal else page.problems(exc),
            refusal=refusal,
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender, own_fields=("lead_id",))


@router.post("/leads/{lead_id}/contact")
async def contact(request: Request, lead_id: str) -> Response:
    async def step(page: Page, number: int, form: FormData, args: dict[str, Any]) -> Response:
        data = ContactLogged.model_validate({"note": _text(form, "note")})
        await _through_workflow(page, lambda: lead_routes.contact(**args, data=data))
        return redirect(f"/leads/{number}", flash="lead_contacted")

    return await _transition(request, lead_id, step)


@router.post("/leads/{lead_id}/qualify")
async def qualify(request: Request, lead_id: str) -> Response:
    async def step(page: Page, number: int, form: FormData, args: dict[str, Any]) -> Response:
        await _through_workflow(page, lambda: lead_routes.qualify(**args))
        return redirect(f"/leads/{number}", flash="lead_qualified")

    return await _transition(request, lead_id, step)


@router.post("/leads/{lead_id}/disqualify")
async def disqualify(request: Request, lead_id: str) -> Response:
    async def step(page: Page, number: int, form: FormData, args: dict[str, Any]) -> Response:
        data = Disqualify.model_validate({"reason": _text(form, "reason") or ""})
        await _through_workflow(page, lambda: lead_routes.disqualify(**args, data=data))
        return redirect(f"/leads/{number}", flash="lead_disqualified")

    return await _transition(request, lead_id, step)


@router.post("/leads/{lead_id}/convert")
async def convert(request: Request, lead_id: str) -> Response:
    async def step(page: Page, number: int, form: FormData, args: dict[str, Any]) -> Response:
        data = Convert.model_validate(
            {"deal_name": _text(form, "deal_name"), "amount": _text(form, "amount")}
        )
        after = await _through_workflow(page, lambda: lead_routes.convert(**args, data=data))
        if after.customer_id is None:
            return redirect(f"/leads/{number}", flash="lead_converted")
        return redirect(f"/customers/{after.customer_id}", flash="lead_converted")

    return await _transition(request, lead_id, step)


@router.post("/leads/{lead_id}/reassign")
async def reassign(request: Request, lead_id: str) -> Response:
    async def step(page: Page, number: int, form: FormData, args: dict[str, Any]) -> Response:
        data = Reassign.model_validate({"owner_id": _text(form, "owner_id")})
        await _through_workflow(page, lambda: lead_routes.reassign(**args, data=data))
        # Given outside the manager's teams, the lead is no longer theirs to see.
        async with page.request.app.state.sessions() as fresh:
            try:
                await lead.service.get(fresh, actor=page.me, lead_id=number)
            except DomainError:
                return redirect("/leads", flash="lead_reassigned")
        return redirect(f"/leads/{number}", flash="lead_reassigned")

    return await _transition(request, lead_id, step)
