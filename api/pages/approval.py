"""The one-click approval link from the approval mail: confirm, then answer — no sign-in.

Mail scanners follow links, so the GET only shows what is being approved and the decision the
link carries; the POST (with a CSRF token bound to a nonce cookie, as the sign-in form does)
sends the answer through `api.approval.answer_link`. A forged (403), expired (410) or used
(409) link gets a clear page in the approver's own language, never a 500.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData
from temporalio.service import RPCError

from api import approval as approval_routes
from api import i18n
from api.errors import TemporalUnavailable
from api.pages.base import (
    CSRF_FIELD,
    LANG_COOKIE,
    Page,
    csrf_ok,
    csrf_token,
    new_login_nonce,
    open_page,
)
from api.pages.refusal import Refusal, through_workflow
from domain import user
from domain.approval import (
    Approval,
    ApprovalDecision,
    ApprovalStatus,
    Subject,
    link_user_id,
)
from domain.contract.models import Contract
from domain.customer import Customer
from domain.db import transaction
from domain.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from domain.quote.models import Quote

router = APIRouter(include_in_schema=False)

LINK_COOKIE = "dossier_link"
LINK_PATH = "/approvals/link"
PURPOSE = "approval-link"
NONCE_SECONDS = 2 * 3600
MAX_TOKEN = 1000


def decision_of(form: FormData) -> ApprovalDecision:
    """The button pressed: approve, reject or request changes."""
    raw = str(form.get("decision") or "")
    if raw not in ApprovalDecision.__members__:
        raise Invalid("choose approve, reject or request changes", field="decision")
    return ApprovalDecision(raw)


async def _in_approvers_language(page: Page, token: str) -> Page:
    """The approver's own language unless this browser chose one: the link names them."""
    if i18n.language(page.request.cookies.get(LANG_COOKIE)) or page.actor is not None:
        return page
    user_id = link_user_id(page.settings.signing_key(), token)
    person = await page.session.get(user.User, user_id) if user_id else None
    lang = i18n.language(person.locale) if person else None
    return dataclasses.replace(page, lang=lang) if lang else page


async def _open(request: Request, session: Any, token: str) -> Page:
    page = await open_page(request, session, signed_in=False)
    return await _in_approvers_language(page, token)


async def _summary(page: Page, row: Approval) -> dict[str, Any]:
    """What the link is about: the contract or quote, by the row the signed link names."""
    session = page.session
    if row.subject == Subject.contract.value:
        contract = await session.get(Contract, row.subject_id)
        if contract is None:
            raise NotFound("no such contract", field="token")
        party = await session.get(Customer, contract.customer_id)
        return {
            "kind": "contract",
            "number": contract.number,
            "title": contract.title,
            "amount": contract.amount,
            "currency": contract.currency,
            "customer": party.name if party else "",
            "status": contract.status,
        }
    quote = await session.get(Quote, row.subject_id)
    if quote is None:
        raise NotFound("no such quote", field="token")
    party = await session.get(Customer, quote.customer_id)
    return {
        "kind": "quote",
        "number": quote.number,
        "title": "",
        "amount": quote.total,
        "currency": quote.currency,
        "customer": party.name if party else "",
        "status": quote.status,
        "discount_pct": quote.discount_pct,
    }


async def _usable(page: Page, token: str) -> tuple[ApprovalDecision, Approval]:
    """The link's decision and its row, or the reason it cannot be used (403/404/409/410)."""
    if len(token) > MAX_TOKEN:
        raise Forbidden("this link is not valid", field="token")
    claims, _actor = await approval_routes.link_actor(page.session, page.settings, token)
    row = await page.session.get(Approval, claims.approval_id)
    if row is None:
        raise NotFound("no such approval", field="token")
    if row.status != ApprovalStatus.pending.value:
        raise Conflict("this link has already been used or its step is settled", field="token")
    return claims.decision, row


def _text(page: Page, exc: DomainError) -> str:
    return exc.message if isinstance(exc, Refusal) else page.t.error(exc.message)


def _problem(page: Page, exc: DomainError) -> HTMLResponse:
    return page.render(
        "approvals/link.html",
        status=exc.status,
        state="problem",
        status_code=exc.status,
        message=_text(page, exc),
    )


async def _confirm(
    page: Page, token: str, *, comment: str = "", refusal: str | None = None, status: int = 200
) -> Response:
    decision, row = await _usable(page, token)
    nonce = page.request.cookies.get(LINK_COOKIE) or new_login_nonce()
    response = page.render(
        "approvals/link.html",
        status=status,
        state="confirm",
        token=token,
        decision=decision.value,
        subject=await _summary(page, row),
        step=row.step_name,
        link_csrf=csrf_token(page.settings, nonce, PURPOSE),
        comment=comment,
        refusal=refusal,
    )
    response.set_cookie(
        LINK_COOKIE,
        nonce,
        max_age=NONCE_SECONDS,
        path=LINK_PATH,
        httponly=True,
        secure=page.settings.cookie_secure,
        samesite="lax",
    )
    return response


@router.get("/approvals/link/{token}")
async def link_page(request: Request, token: str) -> Response:
    """Show the subject and the decision with a confirm button; changes nothing."""
    async with transaction(request.app.state.sessions) as session:
        page = await _open(request, session, token)
        try:
            return await _confirm(page, token)
        except DomainError as exc:
            return _problem(page, exc)


@router.post("/approvals/link/{token}")
async def answer_link(request: Request, token: str) -> Response:
    """Send the link's decision (with the optional comment) and show what came of it."""
    form = await request.form()
    comment = str(form.get("comment") or "").strip()[:2000]
    sessions = request.app.state.sessions
    try:
        async with transaction(sessions) as session:
            page = await _open(request, session, token)
            if not csrf_ok(
                page.settings, request.cookies.get(LINK_COOKIE), form.get(CSRF_FIELD), PURPOSE
            ):
                raise Refusal(page.t("error.csrf"), 403)
            decision, row = await _usable(page, token)
            subject = await _summary(page, row)
            temporal = await request.app.state.temporal.client()
            decided = await through_workflow(
                page,
                lambda: approval_routes.answer_link(
                    session, temporal, page.settings, token=token, comment=comment or None
                ),
            )
    except (DomainError, TemporalUnavailable, RPCError) as exc:
        async with transaction(sessions) as session:
            page = await _open(request, session, token)
            if not isinstance(exc, DomainError):
                return _problem(page, Refusal(page.t("error.workflow_unavailable"), 503))
            if exc.status == 422:  # "say why in a comment": the form again, with the reason
                try:
                    return await _confirm(
                        page, token, comment=comment, refusal=_text(page, exc), status=422
                    )
                except DomainError as gone:
                    return _problem(page, gone)
            return _problem(page, exc)
    async with transaction(sessions) as session:
        page = await _open(request, session, token)
        return page.render(
            "approvals/link.html",
            state="done",
            decision=decision.value,
            outcome=decided.outcome,
            subject=subject,
            step=row.step_name,
        )
