"""One quote: its lines and totals, and the steps its state allows, by the API's own routes.

Submit starts the discount approval when the policy asks for one; send, accept and reject
record the customer's side; a new version copies the latest into a fresh draft. A refusal
(wrong state, expired) is shown on the quote in the user's language, with the API's status.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from api import quote as quote_routes
from api.pages.base import Page, record_id, redirect, status_of, submit, view
from api.pages.refusal import Refusal, through_workflow
from domain import user
from domain.deal import service as deals
from domain.deal.models import DealStatus
from domain.errors import NotFound
from domain.quote import service as quotes
from domain.quote.models import QuoteStatus
from domain.quote.schemas import QuoteRead

router = APIRouter(include_in_schema=False)

ACTIONS: dict[QuoteStatus, tuple[str, ...]] = {
    QuoteStatus.draft: ("submit", "new-version"),
    QuoteStatus.approved: ("send", "new-version"),
    QuoteStatus.sent: ("accept", "reject", "new-version"),
    QuoteStatus.rejected: ("new-version",),
}
"""What each state allows; the service refuses anything else with the reason."""


async def _render_quote(
    page: Page, quote_id: int, *, refusal: str | None = None, status: int = 200
) -> Response:
    row = await quotes.get(page.session, actor=page.me, quote_id=quote_id)
    deal = await deals.get(page.session, actor=page.me, deal_id=row.deal_id)
    can_write = deal.status == DealStatus.open.value and await user.answers_for(
        page.session, actor=page.me, owner_id=deal.owner_id
    )
    actions = ACTIONS.get(QuoteStatus(row.status), ()) if can_write else ()
    return page.render(
        "quotes/detail.html",
        status=status,
        row=QuoteRead.model_validate(row),
        deal=deal,
        actions=actions,
        refusal=refusal,
    )


@router.get("/quotes/{quote_id}")
async def quote_page(request: Request, quote_id: str) -> Response:
    async def body(page: Page) -> Response:
        return await _render_quote(page, record_id(quote_id, "quote_id"))

    return await view(request, body)


Step = Callable[[Page, int], Awaitable[QuoteRead]]


async def _submit(page: Page, number: int) -> QuoteRead:
    return await quote_routes.submit_quote(
        quote_id=number,
        actor=page.me,
        session=page.session,
        settings=page.settings,
        temporal=await page.request.app.state.temporal.client(),
    )


async def _send(page: Page, number: int) -> QuoteRead:
    return await quote_routes.send_quote(
        quote_id=number, actor=page.me, session=page.session, settings=page.settings
    )


async def _accept(page: Page, number: int) -> QuoteRead:
    return await quote_routes.accept_quote(
        quote_id=number, actor=page.me, session=page.session, settings=page.settings
    )


async def _reject(page: Page, number: int) -> QuoteRead:
    return await quote_routes.reject_quote(quote_id=number, actor=page.me, session=page.session)


async def _new_version(page: Page, number: int) -> QuoteRead:
    return await quote_routes.new_version(
        quote_id=number, actor=page.me, session=page.session, settings=page.settings
    )


STEPS: dict[str, Step] = {
    "submit": _submit,
    "send": _send,
    "accept": _accept,
    "reject": _reject,
    "new-version": _new_version,
}


@router.post("/quotes/{quote_id}/{step}")
async def quote_step(request: Request, quote_id: str, step: str) -> Response:
    """One of the quote's buttons; the answer is the quote (or its new version) again."""

    async def action(page: Page, form: FormData) -> Response:
        number = record_id(quote_id, "quote_id")
        if step not in STEPS:
            raise NotFound("no such record", field="step")
        after = await through_workflow(page, lambda: STEPS[step](page, number))
        return redirect(f"/quotes/{after.id}", flash=f"quote_{step.replace('-', '_')}")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        message = exc.message if isinstance(exc, Refusal) else page.problems(exc).summary()[0]
        return await _render_quote(
            page, record_id(quote_id, "quote_id"), refusal=message, status=status_of(exc)
        )

    return await submit(request, action, rerender=rerender, own_fields=("quote_id", "step"))
