"""Deals: create, read, list and edit plain fields; what a stage move needs and writes.

A deal is visible to whoever may see its customer. Its stage moves only through its workflow
(`deal-<id>`); `move` here is the write that workflow's activity makes, after `missing` has
checked the exit criteria in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, customer, policy, timeline, user
from domain.access import Actor, Role
from domain.db import utcnow
from domain.deal.models import Deal, DealStageChange, DealStatus
from domain.deal.rules import Criterion, Outcome, PipelinePolicy, Stage
from domain.deal.schemas import (
    DealCreate,
    DealPage,
    DealQuery,
    DealRead,
    DealUpdate,
    StageTotal,
)
from domain.errors import Conflict, Forbidden, Invalid, NotFound
from domain.policy import PolicyKind
from domain.quote.models import Quote, QuoteStatus

ENTITY = "deal"
SALES_ROLES = (Role.sales.value, Role.sales_manager.value)
CENT = Decimal("0.01")


async def pipeline(session: AsyncSession, name: str) -> tuple[int, PipelinePolicy]:
    """The pipeline in force under `name`; only "default" may run on the built-in stages."""
    version, rules = await policy.current(session, kind=PolicyKind.pipeline, name=name)
    if version == 0 and name != policy.DEFAULT_NAME:
        raise Invalid(f"no pipeline named {name!r} is published", field="pipeline")
    assert isinstance(rules, PipelinePolicy)
    return version, rules


async def get(session: AsyncSession, *, actor: Actor, deal_id: int) -> Deal:
    """The deal if the actor may see its customer; otherwise 404, so no existence leaks."""
    row = await session.get(Deal, deal_id)
    if row is None:
        raise NotFound("no such deal", field="deal_id")
    await customer.check_visible(session, actor=actor, customer_id=row.customer_id, entity="deal")
    return row


async def _check_people(session: AsyncSession, *, customer_id: int, fields: dict[str, Any]) -> None:
    for name in ("contact_id", "decision_maker_id"):
        if fields.get(name) is not None:
            contact = await session.get(customer.Contact, fields[name])
            if contact is None or contact.customer_id != customer_id:
                raise Invalid("no such contact of this customer", field=name)
    if fields.get("owner_id") is not None:
        owner = await session.get(user.User, fields["owner_id"])
        if owner is None or not owner.active or owner.role not in SALES_ROLES:
            raise Invalid("no such active sales user", field="owner_id")


def _snapshot(row: Deal) -> dict[str, Any]:
    return {
        name: getattr(row, name)
        for name in (
            "name",
            "owner_id",
            "contact_id",
            "decision_maker_id",
            "amount",
            "budget",
            "expected_close_on",
            "next_step",
            "stage",
            "status",
        )
    }


async def create(session: AsyncSession, *, actor: Actor, data: DealCreate) -> Deal:
    owner = await customer.get_for_update(session, actor=actor, customer_id=data.customer_id)
    fields = data.model_dump()
    fields["owner_id"] = data.owner_id or actor.user_id or owner.owner_id
    await _check_people(session, customer_id=owner.id, fields=fields)
    version, rules = await pipeline(session, data.pipeline)
    first = rules.first
    row = Deal(
        **fields,
        pipeline_version=version,
        stage=first.key,
        probability=first.probability,
        stage_entered_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    session.add(DealStageChange(deal_id=row.id, to_stage=first.key, by_user_id=actor.user_id))
    audit.record(
        session, actor=actor, action="create", entity=ENTITY, entity_id=row.id, after=_snapshot(row)
    )
    timeline.add(
        session,
        customer_id=row.customer_id,
        kind="deal.created",
        actor=actor,
        summary=row.name,
        ref=(ENTITY, row.id),
    )
    return row


async def update(session: AsyncSession, *, actor: Actor, deal_id: int, data: DealUpdate) -> Deal:
    row = await get(session, actor=actor, deal_id=deal_id)
    if not await user.answers_for(session, actor=actor, owner_id=row.owner_id):
        raise Forbidden("only the deal's owner or their manager may change it")
    if row.status != DealStatus.open.value:
        raise Conflict(f"a deal that is {row.status} cannot be changed", field="status")
    fields = data.model_dump(exclude_unset=True)
    await _check_people(session, customer_id=row.customer_id, fields=fields)
    before = _snapshot(row)
    for name, value in fields.items():
        setattr(row, name, value)
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


async def pipeline_names(session: AsyncSession) -> list[str]:
    """"default" and every pipeline published under its own name, for choosing one."""
    rows = await session.scalars(
        select(policy.Policy.name).where(policy.Policy.kind == PolicyKind.pipeline.value).distinct()
    )
    return sorted({policy.DEFAULT_NAME, *rows.all()})


def _where(actor: Actor, query: DealQuery) -> list[Any]:
    where = [Deal.customer_id.in_(select(customer.Customer.id).where(customer.visible(actor)))]
    if query.status is not None:
        where.append(Deal.status == query.status.value)
    if query.pipeline is not None:
        where.append(Deal.pipeline == query.pipeline)
    if query.stage is not None:
        where.append(Deal.stage == query.stage)
    if query.mine:
        where.append(Deal.owner_id == actor.user_id)
    elif query.owner_id is not None:
        where.append(Deal.owner_id == query.owner_id)
    if query.customer_id is not None:
        where.append(Deal.customer_id == query.customer_id)
    return where


async def stage_totals(
    session: AsyncSession, *, actor: Actor, query: DealQuery
) -> dict[str, StageTotal]:
    """Per stage: how many deals match, their amount, and that amount weighted by probability
    (the forecast). Summed in SQL, so the board is right however many deals there are."""
    rows = await session.execute(
        select(
            Deal.stage,
            func.count(Deal.id),
            func.sum(Deal.amount),
            func.sum(Deal.amount * Deal.probability),
        )
        .where(*_where(actor, query))
        .group_by(Deal.stage)
    )
    return {
        stage: StageTotal(
            count=count,
            amount=Decimal(str(amount or 0)).quantize(CENT),
            weighted=(Decimal(str(weighted or 0)) / 100).quantize(CENT),
        )
        for stage, count, amount, weighted in rows.all()
    }


def listed(*, actor: Actor, query: DealQuery) -> Select[Any]:
    """Every deal the list `query` describes, in its order and unpaged (an export pages it)."""
    order = {
        "-created_at": (Deal.created_at.desc(), Deal.id.desc()),
        "expected_close_on": (Deal.expected_close_on.is_(None), Deal.expected_close_on, Deal.id),
        "-amount": (Deal.amount.is_(None), Deal.amount.desc(), Deal.id),
        "stage_entered_at": (Deal.stage_entered_at, Deal.id),
    }[query.sort]
    return select(Deal).where(*_where(actor, query)).order_by(*order)


async def search(session: AsyncSession, *, actor: Actor, query: DealQuery) -> DealPage:
    total = await session.scalar(select(func.count(Deal.id)).where(*_where(actor, query)))
    rows = await session.scalars(
        listed(actor=actor, query=query).offset((query.page - 1) * query.size).limit(query.size)
    )
    return DealPage(
        items=[DealRead.model_validate(r) for r in rows],
        total=total or 0,
        page=query.page,
        size=query.size,
    )


async def history(session: AsyncSession, *, deal_id: int) -> list[DealStageChange]:
    rows = await session.scalars(
        select(DealStageChange)
        .where(DealStageChange.deal_id == deal_id)
        .order_by(DealStageChange.at, DealStageChange.id)
    )
    return list(rows.all())


async def accepted_quote(session: AsyncSession, *, deal_id: int) -> Quote | None:
    return await session.scalar(
        select(Quote)
        .where(Quote.deal_id == deal_id, Quote.status == QuoteStatus.accepted.value)
        .order_by(Quote.version.desc())
        .limit(1)
    )


async def missing(session: AsyncSession, *, deal: Deal, criteria: list[Criterion]) -> list[str]:
    """The criteria the deal does not meet yet, by name."""
    filled = {
        Criterion.amount: deal.amount is not None,
        Criterion.budget: deal.budget is not None,
        Criterion.decision_maker: deal.decision_maker_id is not None,
        Criterion.contact: deal.contact_id is not None,
        Criterion.expected_close_on: deal.expected_close_on is not None,
        Criterion.next_step: bool(deal.next_step),
        Criterion.description: bool(deal.description),
    }
    gaps = [c.value for c in criteria if c in filled and not filled[c]]
    if (
        Criterion.accepted_quote in criteria
        and await accepted_quote(session, deal_id=deal.id) is None
    ):
        gaps.append(Criterion.accepted_quote.value)
    return gaps


def enter(
    session: AsyncSession,
    *,
    deal: Deal,
    stage: Stage,
    actor: Actor,
    at: datetime,
    key: str,
    lost_reason: str | None,
    note: str | None,
) -> None:
    """Write the move: stage, probability, outcome, history row, audit and timeline."""
    before = {"stage": deal.stage, "status": deal.status}
    session.add(
        DealStageChange(
            deal_id=deal.id,
            from_stage=deal.stage,
            to_stage=stage.key,
            by_user_id=actor.user_id,
            at=at,
            key=key,
        )
    )
    deal.stage, deal.probability, deal.stage_entered_at = stage.key, stage.probability, at
    if stage.outcome is Outcome.won:
        deal.status, deal.closed_at = DealStatus.won.value, at
    elif stage.outcome is Outcome.lost:
        deal.status, deal.closed_at, deal.lost_reason = DealStatus.lost.value, at, lost_reason
    audit.record(
        session,
        actor=actor,
        action="move",
        entity=ENTITY,
        entity_id=deal.id,
        before=before,
        after={"stage": deal.stage, "status": deal.status},
        note={"note": note, "lost_reason": lost_reason} if note or lost_reason else None,
    )
    timeline.add(
        session,
        customer_id=deal.customer_id,
        kind=f"deal.{stage.key}",
        actor=actor,
        summary=note or lost_reason or deal.name,
        ref=(ENTITY, deal.id),
        detail={"from": before["stage"], "to": stage.key},
    )
