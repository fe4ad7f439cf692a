"""Quote routes: versions per deal, draft edits, submit (with the approval chain when a discount
is too deep), send, and the customer's answer."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter

from api import approval
from api.deps import CurrentActor, RecordId, SessionDep, SettingsDep, TemporalDep
from domain.approval import Subject
from domain.quote import service
from domain.quote.models import QuoteStatus
from domain.quote.schemas import QuoteCreate, QuoteRead, QuoteUpdate
from domain.settings import Settings

router = APIRouter(tags=["quotes"])


def _today(settings: Settings) -> date:
    """Validity dates are the company's calendar days, not UTC ones."""
    return datetime.now(ZoneInfo(settings.timezone)).date()


@router.post("/api/deals/{deal_id}/quotes", status_code=201)
async def create_quote(
    deal_id: RecordId,
    data: QuoteCreate,
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
) -> QuoteRead:
    """The deal's first quote, or a fresh next version that supersedes the one in play."""
    row = await service.create(
        session, actor=actor, deal_id=deal_id, data=data, today=_today(settings)
    )
    return QuoteRead.model_validate(row)


@router.get("/api/deals/{deal_id}/quotes")
async def list_quotes(
    deal_id: RecordId, actor: CurrentActor, session: SessionDep
) -> list[QuoteRead]:
    """Every version, newest first."""
    rows = await service.list_for_deal(session, actor=actor, deal_id=deal_id)
    return [QuoteRead.model_validate(r) for r in rows]


@router.get("/api/quotes/{quote_id}")
async def get_quote(quote_id: RecordId, actor: CurrentActor, session: SessionDep) -> QuoteRead:
    row = await service.get(session, actor=actor, quote_id=quote_id)
    return QuoteRead.model_validate(row)


@router.patch("/api/quotes/{quote_id}")
async def update_quote(
    quote_id: RecordId,
    data: QuoteUpdate,
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
) -> QuoteRead:
    row = await service.update(
        session, actor=actor, quote_id=quote_id, data=data, today=_today(settings)
    )
    return QuoteRead.model_validate(row)


@router.post("/api/quotes/{quote_id}/new-version", status_code=201)
async def new_version(
    quote_id: RecordId, actor: CurrentActor, session: SessionDep, settings: SettingsDep
) -> QuoteRead:
    row = await service.new_version(session, actor=actor, quote_id=quote_id, today=_today(settings))
    return QuoteRead.model_validate(row)


@router.post("/api/quotes/{quote_id}/submit")
async def submit_quote(
    quote_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> QuoteRead:
    """Approved at once, or pending_approval with its approval chain started before the commit:
    if Temporal cannot start it, nothing changes (503)."""
    row = await service.submit(session, actor=actor, quote_id=quote_id, today=_today(settings))
    if row.status == QuoteStatus.pending_approval:
        await approval.start_approval(temporal, settings, subject=Subject.quote, subject_id=row.id)
    return QuoteRead.model_validate(row)


@router.post("/api/quotes/{quote_id}/send")
async def send_quote(
    quote_id: RecordId, actor: CurrentActor, session: SessionDep, settings: SettingsDep
) -> QuoteRead:
    row = await service.send(session, actor=actor, quote_id=quote_id, today=_today(settings))
    return QuoteRead.model_validate(row)


@router.post("/api/quotes/{quote_id}/accept")
async def accept_quote(
    quote_id: RecordId, actor: CurrentActor, session: SessionDep, settings: SettingsDep
) -> QuoteRead:
    """The customer accepted: the deal's contract will be drafted from this version."""
    row = await service.accept(session, actor=actor, quote_id=quote_id, today=_today(settings))
    return QuoteRead.model_validate(row)


@router.post("/api/quotes/{quote_id}/reject")
async def reject_quote(quote_id: RecordId, actor: CurrentActor, session: SessionDep) -> QuoteRead:
    """The customer declined."""
    row = await service.reject(session, actor=actor, quote_id=quote_id)
    return QuoteRead.model_validate(row)
