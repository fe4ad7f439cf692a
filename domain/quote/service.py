"""Quote service: priced versions of an offer for a deal, from draft through approval to the
customer's answer. Every write is audited; sent and answered quotes land on the timeline.

A deal's quotes are one chain of versions. Making a new version supersedes the open one, so at
most one version is in play at a time. A version waiting for approval cannot be replaced (its
approval chain would answer for a quote nobody sends), and an accepted one locks the chain:
the contract is drafted from it.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, policy, product, timeline, user
from domain.access import WORKFLOW, Actor
from domain.customer import service as customer_service
from domain.db import utcnow
from domain.deal import Deal, DealStatus
from domain.errors import Conflict, Forbidden, Invalid, NotFound
from domain.policy import PolicyKind
from domain.quote import pricing
from domain.quote.models import Quote, QuoteLine, QuoteStatus
from domain.quote.rules import QuotePolicy
from domain.quote.schemas import QuoteCreate, QuoteLineIn, QuoteRead, QuoteUpdate

ENTITY = "quote"
THOUSANDTH = Decimal("0.001")
IN_PLAY = (QuoteStatus.draft.value, QuoteStatus.approved.value, QuoteStatus.sent.value)
"""Versions a newer one replaces; rejected and superseded ones stay as they are."""


async def rules(session: AsyncSession) -> QuotePolicy:
    _version, parsed = await policy.current(session, kind=PolicyKind.quote)
    assert isinstance(parsed, QuotePolicy)
    return parsed


def number(*, year: int, deal_id: int, version: int) -> str:
    """`QT-2026-000012-v1`: the year it was drawn up, the deal, the version — unique per deal."""
    return f"QT-{year}-{deal_id:06d}-v{version}"


def _snapshot(quote: Quote) -> dict[str, Any]:
    return QuoteRead.model_validate(quote).model_dump(exclude={"id", "created_at", "updated_at"})


# Access -----------------------------------------------------------------------------------


async def _deal(session: AsyncSession, *, actor: Actor, deal_id: int) -> Deal:
    """The deal if the actor may see its customer; 404 otherwise, so no existence leaks."""
    deal = await session.get(Deal, deal_id)
    if deal is None:
        raise NotFound("no such deal", field="deal_id")
    await customer_service.check_visible(
        session, actor=actor, customer_id=deal.customer_id, entity="deal"
    )
    return deal


async def _check_can_write(session: AsyncSession, *, actor: Actor, deal: Deal) -> None:
    if not await user.answers_for(session, actor=actor, owner_id=deal.owner_id):
        raise Forbidden(
            "only the deal's owner, their manager or an admin may change its quotes",
            field="deal_id",
        )


async def _deal_for_write(session: AsyncSession, *, actor: Actor, deal_id: int) -> Deal:
    deal = await _deal(session, actor=actor, deal_id=deal_id)
    await _check_can_write(session, actor=actor, deal=deal)
    if deal.status != DealStatus.open.value:
        raise Conflict(
            f"the deal is {deal.status}: quotes are made for open deals", field="deal_id"
        )
    return deal


async def _visible(session: AsyncSession, *, actor: Actor, quote: Quote | None) -> Quote:
    if quote is None:
        raise NotFound("no such quote", field="quote_id")
    await customer_service.check_visible(
        session, actor=actor, customer_id=quote.customer_id, entity="quote"
    )
    return quote


async def get(session: AsyncSession, *, actor: Actor, quote_id: int) -> Quote:
    """The quote if the actor may see its deal's customer; otherwise 404."""
    return await _visible(session, actor=actor, quote=await session.get(Quote, quote_id))


async def _get_for_write(session: AsyncSession, *, actor: Actor, quote_id: int) -> Quote:
    """Visible, writable, and locked for the rest of the transaction (PostgreSQL), so two
    transitions of one quote run one after the other."""
    locked = await session.scalar(select(Quote).where(Quote.id == quote_id).with_for_update())
    quote = await _visible(session, actor=actor, quote=locked)
    deal = await session.get(Deal, quote.deal_id)
    assert deal is not None
    await _check_can_write(session, actor=actor, deal=deal)
    return quote


async def list_for_deal(session: AsyncSession, *, actor: Actor, deal_id: int) -> list[Quote]:
    """Every version, newest first."""
    await _deal(session, actor=actor, deal_id=deal_id)
    rows = await session.scalars(
        select(Quote).where(Quote.deal_id == deal_id).order_by(Quote.version.desc())
    )
    return list(rows.all())


async def accepted_for_deal(session: AsyncSession, *, deal_id: int) -> Quote | None:
    """The quote the customer accepted, which the deal's contract is drafted from; or None."""
    return await session.scalar(
        select(Quote)
        .where(Quote.deal_id == deal_id, Quote.status == QuoteStatus.accepted.value)
        .order_by(Quote.version.desc())
        .limit(1)
    )


# Pricing ----------------------------------------------------------------------------------


async def _price_list(
    session: AsyncSession, *, price_list_id: int, today: date
) -> product.PriceList:
    price_list = await session.get(product.PriceList, price_list_id)
    if price_list is None:
        raise Invalid("no such price list", field="price_list_id")
    if not price_list.active:
        raise Invalid("this price list is no longer in use", field="price_list_id")
    if (price_list.valid_from and today < price_list.valid_from) or (
        price_list.valid_to and today > price_list.valid_to
    ):
        raise Invalid("this price list is not valid today", field="price_list_id")
    return price_list


async def _line(
    session: AsyncSession,
    *,
    data: QuoteLineIn,
    index: int,
    price_list: product.PriceList | None,
) -> QuoteLine:
    """A line with the product's and price list's defaults filled in where the caller left
    them out; what the caller sent always wins."""
    field = f"lines.{index}"
    description, unit, unit_price = data.description, data.unit, data.unit_price
    if data.product_id is not None:
        item = await session.get(product.Product, data.product_id)
        if item is None:
            raise Invalid("no such product", field=f"{field}.product_id")
        if not item.active:
            raise Invalid("this product is no longer sold", field=f"{field}.product_id")
        description = description or item.name
        unit = unit or item.unit
        if unit_price is None:
            unit_price = await product.unit_price(session, product=item, price_list=price_list)
    if description is None:
        raise Invalid("a line without a product needs a description", field=f"{field}.description")
    if unit_price is None:
        raise Invalid("a line without a product needs a unit price", field=f"{field}.unit_price")
    return QuoteLine(
        position=index + 1,
        product_id=data.product_id,
        description=description,
        quantity=data.quantity.quantize(THOUSANDTH),
        unit=unit or "件",
        unit_price=pricing.money(unit_price),
        discount_pct=pricing.money(data.discount_pct),
    )


async def _lines(
    session: AsyncSession, *, lines: list[QuoteLineIn], price_list: product.PriceList | None
) -> list[QuoteLine]:
    return [
        await _line(session, data=data, index=index, price_list=price_list)
        for index, data in enumerate(lines)
    ]


def _reprice(quote: Quote) -> None:
    """Line totals and quote totals from the lines and the tax rate, nothing else."""
    amounts = []
    for index, line in enumerate(quote.lines):
        figures = pricing.line_amounts(
            line.quantity, line.unit_price, line.discount_pct, field=f"lines.{index}"
        )
        line.line_total = figures.total
        amounts.append(figures)
    sums = pricing.totals(amounts, quote.tax_rate)
    quote.subtotal = sums.subtotal
    quote.discount_total = sums.discount_total
    quote.net_total = sums.net_total
    quote.tax_amount = sums.tax_amount
    quote.total = sums.total
    quote.discount_pct = sums.discount_pct


def _check_valid_until(valid_until: date, *, today: date) -> None:
    if valid_until < today:
        raise Invalid("must not be in the past", field="valid_until")


def _check_not_expired(quote: Quote, *, today: date) -> None:
    if quote.valid_until is not None and quote.valid_until < today:
        raise Conflict(
            f"the quote expired on {quote.valid_until.isoformat()}; make a new version",
            field="valid_until",
        )


def _refuse(quote: Quote, message: str) -> Conflict:
    return Conflict(
        f"{message} (it is {quote.status})", field="status", current_status=quote.status
    )


def _check_status(quote: Quote, *allowed: QuoteStatus, message: str) -> None:
    if quote.status not in allowed:
        raise _refuse(quote, message)


# Versions ---------------------------------------------------------------------------------


async def _latest(session: AsyncSession, *, deal_id: int) -> Quote | None:
    return await session.scalar(
        select(Quote).where(Quote.deal_id == deal_id).order_by(Quote.version.desc()).limit(1)
    )


async def _check_replaceable(session: AsyncSession, *, deal_id: int, latest: Quote) -> None:
    accepted = await accepted_for_deal(session, deal_id=deal_id)
    if accepted is not None:
        raise Conflict(
            f"the customer accepted {accepted.number}; its deal takes no new quotes",
            field="status",
            current_status=accepted.status,
        )
    if latest.status == QuoteStatus.pending_approval.value:
        raise Conflict(
            f"{latest.number} waits for approval; a new version can follow the answer",
            field="status",
            current_status=latest.status,
        )


def _supersede(session: AsyncSession, *, actor: Actor, quote: Quote) -> None:
    if quote.status not in IN_PLAY:
        return
    before = quote.status
    quote.status = QuoteStatus.superseded.value
    quote.updated_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action="supersede",
        entity=ENTITY,
        entity_id=quote.id,
        before={"status": before},
        after={"status": quote.status},
    )


async def _add_version(
    session: AsyncSession, *, actor: Actor, quote: Quote, replaces: Quote | None, action: str
) -> Quote:
    """Store a new version; two made at once collide on (deal, version) and one gets a 409."""
    if replaces is not None:
        _supersede(session, actor=actor, quote=replaces)
    session.add(quote)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(
            "someone made a new version at the same time; reload", field="version"
        ) from None
    audit.record(
        session,
        actor=actor,
        action=action,
        entity=ENTITY,
        entity_id=quote.id,
        after=_snapshot(quote),
    )
    return quote


async def create(
    session: AsyncSession, *, actor: Actor, deal_id: int, data: QuoteCreate, today: date
) -> Quote:
    """The deal's first quote, or a fresh next version replacing the one in play."""
    deal = await _deal_for_write(session, actor=actor, deal_id=deal_id)
    latest = await _latest(session, deal_id=deal_id)
    if latest is not None:
        await _check_replaceable(session, deal_id=deal_id, latest=latest)
    terms = await rules(session)
    valid_until = data.valid_until or today + timedelta(days=terms.validity_days)
    _check_valid_until(valid_until, today=today)
    price_list = (
        await _price_list(session, price_list_id=data.price_list_id, today=today)
        if data.price_list_id is not None
        else None
    )
    version = latest.version + 1 if latest else 1
    quote = Quote(
        number=number(year=today.year, deal_id=deal.id, version=version),
        deal_id=deal.id,
        customer_id=deal.customer_id,
        version=version,
        status=QuoteStatus.draft.value,
        currency=price_list.currency if price_list else deal.currency,
        price_list_id=data.price_list_id,
        tax_rate=pricing.money(
            data.tax_rate if data.tax_rate is not None else terms.default_tax_rate
        ),
        valid_until=valid_until,
        note=data.note,
        created_by=actor.user_id,
        lines=await _lines(session, lines=data.lines, price_list=price_list),
    )
    _reprice(quote)
    return await _add_version(session, actor=actor, quote=quote, replaces=latest, action="create")


async def new_version(session: AsyncSession, *, actor: Actor, quote_id: int, today: date) -> Quote:
    """A draft copy of the latest version; an expired copy gets the policy's validity anew."""
    source = await _get_for_write(session, actor=actor, quote_id=quote_id)
    deal = await _deal_for_write(session, actor=actor, deal_id=source.deal_id)
    latest = await _latest(session, deal_id=deal.id)
    assert latest is not None
    if latest.id != source.id:
        raise Conflict(f"{latest.number} is the latest version; copy that one", field="version")
    await _check_replaceable(session, deal_id=deal.id, latest=source)
    valid_until = source.valid_until
    if valid_until is None or valid_until < today:
        valid_until = today + timedelta(days=(await rules(session)).validity_days)
    version = source.version + 1
    quote = Quote(
        number=number(year=today.year, deal_id=deal.id, version=version),
        deal_id=deal.id,
        customer_id=source.customer_id,
        version=version,
        status=QuoteStatus.draft.value,
        currency=source.currency,
        price_list_id=source.price_list_id,
        tax_rate=source.tax_rate,
        valid_until=valid_until,
        note=source.note,
        created_by=actor.user_id,
        lines=[
            QuoteLine(
                position=line.position,
                product_id=line.product_id,
                description=line.description,
                quantity=line.quantity,
                unit=line.unit,
                unit_price=line.unit_price,
                discount_pct=line.discount_pct,
                line_total=line.line_total,
            )
            for line in source.lines
        ],
    )
    _reprice(quote)
    return await _add_version(
        session, actor=actor, quote=quote, replaces=source, action="new_version"
    )


async def update(
    session: AsyncSession, *, actor: Actor, quote_id: int, data: QuoteUpdate, today: date
) -> Quote:
    """Edit a draft. A new price list prices lines, so it comes with the lines it prices.

    Everything is checked and looked up before the quote changes, so a refusal leaves it as
    it was and no half-made change is flushed."""
    quote = await _get_for_write(session, actor=actor, quote_id=quote_id)
    _check_status(quote, QuoteStatus.draft, message="only a draft quote can be edited")
    sent = data.model_fields_set
    before = _snapshot(quote)
    price_list_id = data.price_list_id if "price_list_id" in sent else quote.price_list_id
    changes_list = price_list_id != quote.price_list_id
    if changes_list and data.lines is None and quote.lines:
        raise Invalid(
            "send the lines with a new price list: lines are priced from it",
            field="price_list_id",
        )
    price_list = (
        await _price_list(session, price_list_id=price_list_id, today=today)
        if price_list_id is not None and (changes_list or data.lines is not None)
        else None
    )
    if data.valid_until is not None:
        _check_valid_until(data.valid_until, today=today)
    lines = (
        await _lines(session, lines=data.lines, price_list=price_list)
        if data.lines is not None
        else None
    )
    if lines is not None or changes_list:
        deal = await session.get(Deal, quote.deal_id)
        assert deal is not None
        quote.currency = price_list.currency if price_list else deal.currency
    if lines is not None:
        quote.lines = lines
    quote.price_list_id = price_list_id
    if data.valid_until is not None:
        quote.valid_until = data.valid_until
    if data.tax_rate is not None:
        quote.tax_rate = pricing.money(data.tax_rate)
    if "note" in sent:
        quote.note = data.note
    _reprice(quote)
    quote.updated_at = utcnow()
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="update",
        entity=ENTITY,
        entity_id=quote.id,
        before=before,
        after=_snapshot(quote),
    )
    return quote


# Lifecycle --------------------------------------------------------------------------------


def _move(
    session: AsyncSession,
    *,
    actor: Actor,
    quote: Quote,
    to: QuoteStatus,
    action: str,
    note: dict[str, Any] | None = None,
) -> None:
    before = _snapshot(quote)
    quote.status = to.value
    quote.updated_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action=action,
        entity=ENTITY,
        entity_id=quote.id,
        before=before,
        after=_snapshot(quote),
        note=note,
    )


def _on_timeline(session: AsyncSession, *, actor: Actor, quote: Quote, kind: str) -> None:
    timeline.add(
        session,
        customer_id=quote.customer_id,
        kind=f"quote.{kind}",
        actor=actor,
        summary=f"{quote.number} · {quote.total} {quote.currency}",
        detail={"total": str(quote.total), "discount_pct": str(quote.discount_pct)},
        ref=(ENTITY, quote.id),
    )


async def submit(session: AsyncSession, *, actor: Actor, quote_id: int, today: date) -> Quote:
    """Approved at once, or pending_approval when a discount is above the policy's threshold:
    then the caller starts the approval chain, and `conclude_approval` records its answer."""
    quote = await _get_for_write(session, actor=actor, quote_id=quote_id)
    _check_status(quote, QuoteStatus.draft, message="only a draft quote can be submitted")
    if not quote.lines:
        raise Invalid("a quote needs at least one line", field="lines")
    _check_not_expired(quote, today=today)
    terms = await rules(session)
    needs = terms.needs_approval(
        overall_pct=quote.discount_pct, line_pcts=[line.discount_pct for line in quote.lines]
    )
    if not needs:
        quote.approved_at = utcnow()
    _move(
        session,
        actor=actor,
        quote=quote,
        to=QuoteStatus.pending_approval if needs else QuoteStatus.approved,
        action="submit",
        note={"threshold_pct": terms.discount_approval_threshold_pct},
    )
    return quote


async def conclude_approval(session: AsyncSession, *, quote_id: int, approved: bool) -> Quote:
    """The approval chain's answer. Idempotent: a retried activity finds the answer recorded."""
    quote = await session.scalar(select(Quote).where(Quote.id == quote_id).with_for_update())
    if quote is None:
        raise NotFound("no such quote", field="quote_id")
    to = QuoteStatus.approved if approved else QuoteStatus.rejected
    if quote.status == to.value:
        return quote
    _check_status(
        quote, QuoteStatus.pending_approval, message="the quote is not waiting for approval"
    )
    if approved:
        quote.approved_at = utcnow()
    _move(session, actor=WORKFLOW, quote=quote, to=to, action="approve" if approved else "reject")
    return quote


async def send(session: AsyncSession, *, actor: Actor, quote_id: int, today: date) -> Quote:
    quote = await _get_for_write(session, actor=actor, quote_id=quote_id)
    if quote.status in (QuoteStatus.draft, QuoteStatus.pending_approval):
        raise _refuse(quote, "the quote needs approval first")
    _check_status(quote, QuoteStatus.approved, message="only an approved quote can be sent")
    _check_not_expired(quote, today=today)
    quote.sent_at = utcnow()
    _move(session, actor=actor, quote=quote, to=QuoteStatus.sent, action="send")
    _on_timeline(session, actor=actor, quote=quote, kind="sent")
    return quote


async def accept(session: AsyncSession, *, actor: Actor, quote_id: int, today: date) -> Quote:
    """The customer accepted: the deal's other versions are superseded and the chain locked."""
    quote = await _get_for_write(session, actor=actor, quote_id=quote_id)
    _check_status(quote, QuoteStatus.sent, message="only a sent quote can be accepted")
    _check_not_expired(quote, today=today)
    quote.accepted_at = utcnow()
    _move(session, actor=actor, quote=quote, to=QuoteStatus.accepted, action="accept")
    others = await session.scalars(
        select(Quote).where(Quote.deal_id == quote.deal_id, Quote.id != quote.id)
    )
    for other in others:
        _supersede(session, actor=actor, quote=other)
    _on_timeline(session, actor=actor, quote=quote, kind="accepted")
    return quote


async def reject(session: AsyncSession, *, actor: Actor, quote_id: int) -> Quote:
    """The customer declined; a new version may follow."""
    quote = await _get_for_write(session, actor=actor, quote_id=quote_id)
    _check_status(quote, QuoteStatus.sent, message="only a sent quote can be rejected")
    _move(session, actor=actor, quote=quote, to=QuoteStatus.rejected, action="reject")
    _on_timeline(session, actor=actor, quote=quote, kind="rejected")
    return quote
