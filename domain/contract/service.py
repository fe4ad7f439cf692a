"""Contracts: drafted from a deal's accepted quote, edited while not in approval, then signed.

Approvers (legal, finance, directors) read every contract; everyone else reads the contracts of
customers they may see. Edits belong to the owner, their manager and admins, and only while the
contract is a draft or was sent back for changes.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, customer, timeline, user
from domain.access import Actor, Role
from domain.approval import Approval
from domain.contract.models import Contract, ContractStatus
from domain.contract.schemas import ContractPage, ContractQuery, ContractUpdate, PaymentTerm
from domain.deal.models import Deal
from domain.errors import Conflict, Forbidden, NotFound
from domain.quote.models import Quote

ENTITY = "contract"
EDITABLE = (ContractStatus.draft.value, ContractStatus.changes_requested.value)
LIVE = (
    ContractStatus.draft.value,
    ContractStatus.in_approval.value,
    ContractStatus.changes_requested.value,
    ContractStatus.signed.value,
)


def _reads_all(actor: Actor) -> bool:
    return actor.scopes is None and actor.role in (Role.admin, Role.approver)


async def get(session: AsyncSession, *, actor: Actor, contract_id: int) -> Contract:
    """The contract if the actor may see it (else 404, so no existence leaks)."""
    row = await session.get(Contract, contract_id)
    if row is None:
        raise NotFound("no such contract", field="contract_id")
    if not _reads_all(actor):
        await customer.check_visible(
            session, actor=actor, customer_id=row.customer_id, entity="contract"
        )
    return row


async def get_for_edit(session: AsyncSession, *, actor: Actor, contract_id: int) -> Contract:
    row = await get(session, actor=actor, contract_id=contract_id)
    if not await user.answers_for(session, actor=actor, owner_id=row.owner_id):
        raise Forbidden("only the contract's owner or their manager may change it")
    if row.status not in EDITABLE:
        raise Conflict(
            f"a contract that is {row.status} cannot be changed", field="status", status=row.status
        )
    return row


def _number(contract_id: int, on: date) -> str:
    return f"HT-{on.year}-{contract_id:06d}"


def _year_after(day: date) -> date:
    """The last day of a one-year term starting on `day`."""
    try:
        return day.replace(year=day.year + 1) - timedelta(days=1)
    except ValueError:  # 29 February
        return date(day.year + 1, 2, 28)


def default_plan(amount: Decimal, start_on: date) -> list[dict[str, str]]:
    """The whole amount due 30 days after the start; the owner edits the draft's plan."""
    if amount <= 0:
        return []
    return [PaymentTerm(due_on=start_on + timedelta(days=30), amount=amount).as_json()]


async def draft_for_deal(
    session: AsyncSession, *, deal: Deal, quote: Quote | None, actor: Actor, today: date
) -> tuple[Contract, bool]:
    """The deal's live contract, or a new draft from its accepted quote; (contract, created)."""
    existing = await session.scalar(
        select(Contract)
        .where(Contract.deal_id == deal.id, Contract.status.in_(LIVE))
        .order_by(Contract.id.desc())
        .limit(1)
    )
    if existing is not None:
        return existing, False
    amount = quote.total if quote is not None else (deal.amount or Decimal("0"))
    row = Contract(
        number=f"tmp-{deal.id}-{today.isoformat()}",
        title=deal.name,
        deal_id=deal.id,
        quote_id=quote.id if quote else None,
        customer_id=deal.customer_id,
        owner_id=deal.owner_id,
        amount=amount,
        currency=deal.currency,
        discount_pct=quote.discount_pct if quote else Decimal("0"),
        start_on=today,
        end_on=_year_after(today),
        payment_terms=default_plan(amount, today),
    )
    session.add(row)
    await session.flush()
    row.number = _number(row.id, today)
    audit.record(
        session,
        actor=actor,
        action="create",
        entity=ENTITY,
        entity_id=row.id,
        after={"number": row.number, "deal_id": deal.id, "amount": str(amount)},
    )
    timeline.add(
        session,
        customer_id=row.customer_id,
        kind="contract.drafted",
        actor=actor,
        summary=f"{row.number} {row.title}",
        ref=(ENTITY, row.id),
    )
    return row, True


def _snapshot(row: Contract) -> dict[str, Any]:
    return {
        "title": row.title,
        "contract_type": row.contract_type,
        "amount": str(row.amount),
        "start_on": row.start_on.isoformat() if row.start_on else None,
        "end_on": row.end_on.isoformat() if row.end_on else None,
        "terms": row.terms,
        "payment_terms": row.payment_terms,
    }


async def update(
    session: AsyncSession, *, actor: Actor, contract_id: int, data: ContractUpdate
) -> Contract:
    row = await get_for_edit(session, actor=actor, contract_id=contract_id)
    before = _snapshot(row)
    fields = data.fields()
    if "payment_terms" in fields:
        fields["payment_terms"] = [term.as_json() for term in data.payment_terms or []]
    for name, value in fields.items():
        setattr(row, name, value)
    data.check_against(
        amount=row.amount,
        start_on=row.start_on,
        end_on=row.end_on,
        terms=[PaymentTerm.model_validate(t) for t in row.payment_terms],
    )
    audit.record(
        session,
        actor=actor,
        action="update",
        entity=ENTITY,
        entity_id=row.id,
        before=before,
        after=_snapshot(row),
    )
    return row


async def check_submit(session: AsyncSession, *, actor: Actor, contract_id: int) -> Contract:
    """The contract may go (back) into approval: a draft or sent back, by its owner's side."""
    return await get_for_edit(session, actor=actor, contract_id=contract_id)


async def trail(session: AsyncSession, *, contract_id: int) -> list[Approval]:
    """Every decision and open request, in order: round, step, seat."""
    rows = await session.scalars(
        select(Approval)
        .where(Approval.subject == ENTITY, Approval.subject_id == contract_id)
        .order_by(Approval.round, Approval.step, Approval.seat, Approval.id)
    )
    return list(rows.all())


async def search(session: AsyncSession, *, actor: Actor, query: ContractQuery) -> ContractPage:
    stmt = select(Contract)
    if not _reads_all(actor):
        stmt = stmt.where(
            Contract.customer_id.in_(select(customer.Customer.id).where(customer.visible(actor)))
        )
    if query.status is not None:
        stmt = stmt.where(Contract.status == query.status.value)
    if query.customer_id is not None:
        stmt = stmt.where(Contract.customer_id == query.customer_id)
    if query.deal_id is not None:
        stmt = stmt.where(Contract.deal_id == query.deal_id)
    rows = await session.scalars(
        stmt.order_by(Contract.id.desc()).offset((query.page - 1) * query.size).limit(query.size)
    )
    return ContractPage.of(list(rows.all()))

