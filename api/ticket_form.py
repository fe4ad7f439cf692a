"""Public ticket pages: the support form (/support) and the satisfaction survey (/surveys/…).

No sign-in. The support form guards itself like the lead forms (a honeypot field and a per-IP
rate limit) and never tells a stranger a ticket id. A survey link is signed, expiring and
single use: GET only shows the choice, POST records it.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import error_body
from api.lead_form import FORM_CSP, RateLimited, RateLimiter, templates
from api.ticket import open_ticket
from domain import policy
from domain.access import Actor, Role, Source
from domain.errors import DomainError, Invalid
from domain.policy import PolicyKind
from domain.ticket import survey
from domain.ticket.models import Channel
from domain.ticket.rules import TicketPolicy
from domain.ticket.schemas import SurveyAnswer, TicketCreate

router = APIRouter(tags=["tickets"])
HONEYPOT = "website"
FORM_LIMIT = 5
"""Submissions per minute from one address."""
FORM_FIELDS = (
    "requester_name",
    "requester_email",
    "requester_phone",
    "type",
    "product",
    "subject",
    "description",
)
FORM_ACTOR = Actor(user_id=None, name="support form", role=Role.admin, source=Source.form)
SURVEY_ACTOR = Actor(user_id=None, name="survey", role=Role.admin, source=Source.form)


def _page(name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """A page of the lead forms' look, under the same strict CSP (no script, nonce'd style)."""
    nonce = secrets.token_urlsafe(16)
    html = templates.get_template(name).render(nonce=nonce, **context)
    response = HTMLResponse(html, status_code=status)
    response.headers["content-security-policy"] = FORM_CSP.format(nonce=nonce)
    response.headers["cache-control"] = "no-store"
    response.headers["x-content-type-options"] = "nosniff"
    return response


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json"


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return _is_json(request) or ("application/json" in accept and "text/html" not in accept)


def _limiter(request: Request) -> RateLimiter:
    limiter = getattr(request.app.state, "support_limiter", None)
    if limiter is None:
        limiter = request.app.state.support_limiter = RateLimiter()
    return limiter


async def _posted(request: Request) -> dict[str, Any]:
    if _is_json(request):
        try:
            body = await request.json()
        except ValueError:
            raise Invalid("must be a JSON object", field="body") from None
        if not isinstance(body, dict):
            raise Invalid("must be a JSON object", field="body")
        return body
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _refusal(request: Request, exc: DomainError, page: str, **context: Any) -> Response:
    if _wants_json(request):
        return JSONResponse(
            error_body(exc.message, field=exc.field, kind=type(exc).__name__.lower()),
            status_code=exc.status,
        )
    return _page(page, status=exc.status, error=exc.message, **context)


@router.get("/support", response_class=HTMLResponse, include_in_schema=False)
async def support_page(session: SessionDep) -> Response:
    _v, rules = await policy.current(session, kind=PolicyKind.ticket)
    assert isinstance(rules, TicketPolicy)
    return _page("tickets/support.html", types=rules.types, error=None, values={})


@router.post("/support", status_code=201)
async def submit_support(
    request: Request, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> Response:
    """Open a ticket from the public form (urlencoded, multipart or JSON). 201 `{"ok": true}`
    to JSON, a thank-you page to a browser — also for a bot caught by the honeypot."""
    _v, rules = await policy.current(session, kind=PolicyKind.ticket)
    assert isinstance(rules, TicketPolicy)
    values: dict[str, Any] = {}
    try:
        host = request.client.host if request.client else "unknown"
        retry = _limiter(request).hit((0, host), FORM_LIMIT)
        if retry is not None:
            raise RateLimited(retry)
        values = await _posted(request)
        if not values.pop(HONEYPOT, None):
            data = _form_data(values)
            if not data.requester_email and not data.requester_phone:
                raise Invalid(
                    "give an email or a phone number to reach you", field="requester_email"
                )
            await open_ticket(session, temporal, settings, actor=FORM_ACTOR, data=data)
    except RateLimited as exc:
        response = _refusal(request, exc, "tickets/support.html", types=rules.types, values=values)
        response.headers["retry-after"] = str(exc.retry_after)
        return response
    except DomainError as exc:
        return _refusal(request, exc, "tickets/support.html", types=rules.types, values=values)
    if _wants_json(request):
        return JSONResponse({"ok": True}, status_code=201)
    return _page(
        "forms/thanks.html",
        title="已收到 · Received",
        message="我们已收到您的请求，会尽快回复。We have your request and will answer soon.",
    )


def _form_data(values: dict[str, Any]) -> TicketCreate:
    unknown = sorted(set(values) - set(FORM_FIELDS))
    if unknown:
        raise Invalid("not a field of this form", field=unknown[0])
    try:
        return TicketCreate(
            **{k: v for k, v in values.items() if v not in ("", None)}, channel=Channel.form
        )
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise Invalid(error["msg"], field=".".join(str(p) for p in error["loc"])) from None


# --- survey --------------------------------------------------------------------------------


@router.get("/surveys/{token}", response_class=HTMLResponse, include_in_schema=False)
async def survey_page(token: str, session: SessionDep, settings: SettingsDep) -> Response:
    """The 1–5 choice; changes nothing."""
    try:
        survey_id = survey.read_link(settings.signing_key(), token)
        _row, ticket = await survey.open_survey(session, survey_id=survey_id)
    except DomainError as exc:
        return _page(
            "forms/thanks.html", status=exc.status, title="满意度调查 · Survey", message=exc.message
        )
    return _page("tickets/survey.html", subject=ticket.subject, ticket_id=ticket.id, error=None)


async def _answer(
    session: SessionDep, settings: SettingsDep, token: str, data: SurveyAnswer
) -> None:
    survey_id = survey.read_link(settings.signing_key(), token)
    _v, rules = await policy.current(session, kind=PolicyKind.ticket)
    assert isinstance(rules, TicketPolicy)
    await survey.answer(
        session, actor=SURVEY_ACTOR, survey_id=survey_id, data=data, low_score=rules.low_score
    )


@router.post("/surveys/{token}", response_class=HTMLResponse, include_in_schema=False)
async def survey_submit(
    request: Request, token: str, session: SessionDep, settings: SettingsDep
) -> Response:
    form = await request.form()
    try:
        try:
            data = SurveyAnswer(score=form.get("score"), comment=form.get("comment") or None)
        except ValidationError as exc:
            error = exc.errors(include_url=False)[0]
            raise Invalid(error["msg"], field=str(error["loc"][0])) from None
        await _answer(session, settings, token, data)
    except DomainError as exc:
        return _page(
            "forms/thanks.html", status=exc.status, title="满意度调查 · Survey", message=exc.message
        )
    return _page(
        "forms/thanks.html",
        title="谢谢 · Thank you",
        message="感谢您的评价！Thank you for your feedback!",
    )


@router.post("/api/surveys/{token}")
async def answer_survey(
    token: str, data: SurveyAnswer, session: SessionDep, settings: SettingsDep
) -> dict[str, bool]:
    """Record the score once; 409 when the survey was answered, 403 for a bad or old link."""
    await _answer(session, settings, token, data)
    return {"ok": True}
