"""Export routes: every list view, with the same filters as its list, as .xlsx or .csv.

`GET /api/<list>/export?format=xlsx|csv&<the list's filters>` answers with the whole list
(not a page of it) as seen by the caller, headed in the caller's language. Bad filters are a
422 naming the field before anything is sent; the export is audited before its first byte.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Select

from api import i18n
from api.customer import custom_filters
from api.deps import CurrentActor, SessionDep, SettingsDep
from api.pages.base import pick_language
from domain import customer, export, lead, ticket
from domain.access import Actor
from domain.customer import CustomerQuery
from domain.deal import service as deals
from domain.deal.schemas import DealQuery
from domain.lead.schemas import LeadQuery
from domain.settings import Settings
from domain.ticket.schemas import TicketQuery

router = APIRouter(tags=["export"])

FormatParam = Annotated[export.Format, Query(description="xlsx (Excel) or csv (UTF-8 with BOM)")]
MEDIA = {
    export.Format.xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    export.Format.csv: "text/csv; charset=utf-8",
}
UNPAGED = {"page", "size"}


async def _respond(
    request: Request,
    session: SessionDep,
    actor: Actor,
    settings: Settings,
    *,
    entity: export.Entity,
    statement: Select[Any],
    filters: dict[str, Any],
    format: export.Format,
) -> StreamingResponse:
    """Audit in the request's transaction (committed when this returns), then stream the
    rows from a session of their own."""
    lang = pick_language(request, actor, settings)
    job = await export.start(
        session,
        actor=actor,
        entity=entity,
        statement=statement,
        filters=filters,
        format=format,
        labels=export.Labels(lang=lang, choice=i18n.Translator(lang).choice),
        timezone=settings.timezone,
    )
    day = datetime.now(ZoneInfo(settings.timezone)).strftime("%Y%m%d")
    name = f"{entity.value}-{day}.{format.value}"
    title = f"{job.sheet_title}-{day}.{format.value}"
    disposition = f"attachment; filename=\"{name}\"; filename*=UTF-8''{quote(title)}"
    return StreamingResponse(
        export.stream(request.app.state.sessions, job),
        media_type=MEDIA[format],
        headers={"Content-Disposition": disposition, "X-Export-Rows": str(job.rows)},
    )


def _filters(query: Any, **extra: Any) -> dict[str, Any]:
    return {**query.model_dump(mode="json", exclude_defaults=True, exclude=UNPAGED), **extra}


@router.get("/api/customers/export")
async def export_customers(
    request: Request,
    query: Annotated[CustomerQuery, Query()],
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
    format: FormatParam = export.Format.xlsx,
) -> StreamingResponse:
    """The customer list with its filters (custom fields as `cf.<key>=value`)."""
    query = query.model_copy(update={"custom": custom_filters(request)})
    statement = await customer.service.listed(session, actor=actor, query=query)
    return await _respond(
        request, session, actor, settings, entity=export.Entity.customers,
        statement=statement, filters=_filters(query), format=format,
    )


@router.get("/api/leads/export")
async def export_leads(
    request: Request,
    query: Annotated[LeadQuery, Query()],
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
    format: FormatParam = export.Format.xlsx,
) -> StreamingResponse:
    return await _respond(
        request, session, actor, settings, entity=export.Entity.leads,
        statement=lead.service.listed(actor=actor, query=query), filters=_filters(query),
        format=format,
    )


@router.get("/api/deals/export")
async def export_deals(
    request: Request,
    query: Annotated[DealQuery, Query()],
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
    format: FormatParam = export.Format.xlsx,
) -> StreamingResponse:
    return await _respond(
        request, session, actor, settings, entity=export.Entity.deals,
        statement=deals.listed(actor=actor, query=query), filters=_filters(query),
        format=format,
    )


@router.get("/api/tickets/export")
async def export_tickets(
    request: Request,
    query: Annotated[TicketQuery, Query()],
    actor: CurrentActor,
    session: SessionDep,
    settings: SettingsDep,
    format: FormatParam = export.Format.xlsx,
) -> StreamingResponse:
    return await _respond(
        request, session, actor, settings, entity=export.Entity.tickets,
        statement=ticket.service.listed(actor=actor, query=query), filters=_filters(query),
        format=format,
    )
