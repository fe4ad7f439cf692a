"""One contract: its fields, payment plan, status and the full decision trail of its approval.

The owner's side edits a draft (or one sent back for changes) and submits it for approval
through the API's own routes; an approver with a pending row answers here, as from the inbox,
through `api.approval.answer`. A workflow's refusal is shown next to the form that asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.datastructures import FormData

from api import approval as approval_routes
from api import contract as contract_routes
from api.pages.approval import decision_of
from api.pages.base import (
    Page,
    Problems,
    Rerender,
    record_id,
    redirect,
    status_of,
    submit,
    view,
)
from api.pages.refusal import Refusal, through_workflow
from domain import customer, user
from domain.approval import Approval, ApprovalStatus
from domain.contract import service as contracts
from domain.contract.models import Contract
from domain.contract.schemas import ContractUpdate
from domain.deal.models import Deal
from domain.order.models import Order

router = APIRouter(include_in_schema=False)

EDIT_FIELDS = ("title", "contract_type", "amount", "start_on", "end_on", "terms")
PLAN_LINE = re.compile(r"^(?P<due_on>\S+)[\s,，]+(?P<amount>\S+)$")


def plan_text(terms: list[dict[str, str]]) -> str:
    """The payment plan as the edit form shows it: one `due date  amount` per line."""
    return "\n".join(f"{t.get('due_on', '')}  {t.get('amount', '')}" for t in terms)


def plan_from_text(raw: str) -> list[dict[str, str]]:
    """The form's lines back as terms; a line that is not two values is kept whole in
    `due_on`, so the schema names it as a bad date next to the field."""
    terms = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        found = PLAN_LINE.match(line.strip())
        if found is None:
            terms.append({"due_on": line.strip(), "amount": "0"})
        else:
            terms.append({"due_on": found["due_on"], "amount": found["amount"].replace(",", "")})
    return terms


async def _my_pending(page: Page, contract_id: int) -> Approval | None:
    """The signed-in person's open approval row on this contract, if they are asked now."""
    return await page.session.scalar(
        select(Approval)
        .where(
            Approval.subject == contracts.ENTITY,
            Approval.subject_id == contract_id,
            Approval.assignee_id == page.me.user_id,
            Approval.status == ApprovalStatus.pending.value,
        )
        .order_by(Approval.id)
        .limit(1)
    )


def _values_of(row: Contract) -> dict[str, str]:
    values = {name: getattr(row, name) for name in EDIT_FIELDS}
    shown = {k: "" if v is None else str(v) for k, v in values.items()}
    shown["payment_terms"] = plan_text(row.payment_terms)
    return shown


async def _render_contract(
    page: Page,
    contract_id: int,
    *,
    values: Mapping[str, Any] | None = None,
    problems: Problems | None = None,
    decide_values: Mapping[str, Any] | None = None,
    refusal: str | None = None,
    status: int = 200,
) -> Response:
    session, me = page.session, page.me
    row = await contracts.get(session, actor=me, contract_id=contract_id)
    can_edit = row.status in contracts.EDITABLE and await user.answers_for(
        session, actor=me, owner_id=row.owner_id
    )
    names = {u.id: u.display_name for u in await user.list_users(session)}
    order_id = await session.scalar(select(Order.id).where(Order.contract_id == row.id))
    return page.render(
        "contracts/detail.html",
        status=status,
        row=row,
        customer_row=await session.get(customer.Customer, row.customer_id),
        deal=await session.get(Deal, row.deal_id) if row.deal_id else None,
        order_id=order_id,
        plan=[
            (term.get("due_on", ""), Decimal(term.get("amount", "0")))
            for term in row.payment_terms
        ],
        trail=await contracts.trail(session, contract_id=row.id),
        names=names,
        can_edit=can_edit,
        mine=await _my_pending(page, row.id),
        values=values or _values_of(row),
        problems=problems or Problems(),
        decide_values=decide_values or {},
        refusal=refusal,
    )


@router.get("/contracts/{contract_id}")
async def contract_page(request: Request, contract_id: str) -> Response:
    async def body(page: Page) -> Response:
        return await _render_contract(page, record_id(contract_id, "contract_id"))

    return await view(request, body)


def _rerender(contract_id: str, *, as_edit: bool) -> Rerender:
    """The contract again: an edit's problems next to its fields, any other refusal above
    the buttons that asked."""

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        refusal = exc.message if isinstance(exc, Refusal) else None
        problems = page.problems(exc)
        if refusal is None and not as_edit:
            refusal = "；".join(problems.summary())
        sent = {k: str(v) for k, v in form.items()}
        return await _render_contract(
            page,
            record_id(contract_id, "contract_id"),
            values=sent if as_edit else None,
            problems=problems if as_edit else None,
            decide_values=None if as_edit else sent,
            refusal=refusal,
            status=status_of(exc),
        )

    return rerender


@router.post("/contracts/{contract_id}/edit")
async def edit_contract(request: Request, contract_id: str) -> Response:
    """The API's edit: only while draft or sent back; the plan must add up to the amount."""

    async def action(page: Page, form: FormData) -> Response:
        number = record_id(contract_id, "contract_id")
        fields: dict[str, Any] = {
            name: str(form.get(name) or "").strip() or None for name in EDIT_FIELDS
        }
        fields["payment_terms"] = plan_from_text(str(form.get("payment_terms") or ""))
        await contract_routes.update_contract(
            contract_id=number,
            data=ContractUpdate.model_validate(fields),
            actor=page.me,
            session=page.session,
        )
        return redirect(f"/contracts/{number}", flash="contract_saved")

    return await submit(
        request,
        action,
        rerender=_rerender(contract_id, as_edit=True),
        own_fields=("contract_id",),
    )


@router.post("/contracts/{contract_id}/submit")
async def submit_contract(request: Request, contract_id: str) -> Response:
    """Into approval (again), exactly as the API's route does it."""

    async def action(page: Page, form: FormData) -> Response:
        number = record_id(contract_id, "contract_id")
        temporal = await page.request.app.state.temporal.client()
        await through_workflow(
            page,
            lambda: contract_routes.submit_contract(
                request=page.request,
                contract_id=number,
                actor=page.me,
                session=page.session,
                temporal=temporal,
                settings=page.settings,
            ),
        )
        return redirect(f"/contracts/{number}", flash="contract_submitted")

    return await submit(
        request,
        action,
        rerender=_rerender(contract_id, as_edit=False),
        own_fields=("contract_id",),
    )


@router.post("/contracts/{contract_id}/decide")
async def decide(request: Request, contract_id: str) -> Response:
    """An approver's answer from the contract page: the same Update as from the inbox."""

    async def action(page: Page, form: FormData) -> Response:
        number = record_id(contract_id, "contract_id")
        await contracts.get(page.session, actor=page.me, contract_id=number)
        approval_id = record_id(str(form.get("approval_id") or ""), "approval_id")
        decision = decision_of(form)
        comment = str(form.get("comment") or "").strip() or None
        temporal = await page.request.app.state.temporal.client()
        await through_workflow(
            page,
            lambda: approval_routes.answer(
                page.session,
                temporal,
                actor=page.me,
                approval_id=approval_id,
                decision=decision,
                comment=comment,
                via="inbox",
            ),
        )
        return redirect(f"/contracts/{number}", flash=f"approval_{decision.value}")

    return await submit(
        request,
        action,
        rerender=_rerender(contract_id, as_edit=False),
        own_fields=("contract_id",),
    )
