"""Deal pages: my (or the team's) deals as a list or a pipeline board, a new deal, one deal.

A deal is created exactly as the API creates it (the row, then its workflow), plain fields are
edited through the API's route, and a stage move is the workflow Update `move` the API's route
sends. A refused move (missing exit criteria, a closed deal, no rights) is shown next to the
move form in the user's language, with the API's status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData

from api import deal as deal_routes
from api.pages.base import Page, Problems, record_id, redirect, status_of, submit, view
from api.pages.refusal import Refusal, plain_text, through_workflow
from domain import customer, user
from domain.access import Role
from domain.contract import service as contracts
from domain.contract.schemas import ContractQuery
from domain.deal import service as deals
from domain.deal.models import DealStatus
from domain.deal.rules import Outcome, PipelinePolicy, Stage
from domain.deal.schemas import DealCreate, DealQuery, DealRead, DealUpdate, StageMove
from domain.errors import DomainError
from domain.order import service as orders
from domain.order.schemas import OrderQuery
from domain.quote import service as quotes

router = APIRouter(include_in_schema=False)

SALES = (Role.sales, Role.sales_manager)  # admins pass require_role as well
PAGE_SIZE = 20
BOARD_CARDS = 20
PROFILE_ROWS = 10
EDIT_FIELDS = (
    "name",
    "amount",
    "budget",
    "contact_id",
    "decision_maker_id",
    "expected_close_on",
    "next_step",
    "description",
)

MISSING_REFUSAL = re.compile(r"^before (?P<stage>\w+), fill in: (?P<gaps>[\w, ]+)$")
SAME_REFUSAL = re.compile(r"^the deal is already in (?P<stage>\w+)$")
CLOSED_REFUSAL = re.compile(r"^the deal is already (?P<status>\w+)$")


# --- shared lookups ------------------------------------------------------------------------


def stage_label(page: Page, stage: Stage | None, key: str = "") -> str:
    """A stage's name as the pipeline policy gives it, in the page's language."""
    if stage is None:
        return key
    return stage.name_en if page.lang == "en" else stage.name


def _text(form: FormData, name: str) -> str | None:
    value = str(form.get(name) or "").strip()
    return value or None


async def _policy(page: Page, name: str) -> PipelinePolicy:
    """The pipeline's stages as they stand; an unpublished name shows the built-in ones."""
    try:
        return (await deals.pipeline(page.session, name))[1]
    except DomainError:
        return PipelinePolicy()


async def _customer_names(page: Page, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await page.session.execute(
        select(customer.Customer.id, customer.Customer.name).where(
            customer.Customer.id.in_(ids), customer.visible(page.me)
        )
    )
    return {row_id: name for row_id, name in rows.all()}


async def _user_names(page: Page) -> dict[int, str]:
    return {u.id: u.display_name for u in await user.list_users(page.session)}


def refusal_text(page: Page, rules: PipelinePolicy, message: str) -> str:
    """A refused move in words: which facts are missing before which stage, and so on."""
    t = page.t
    if found := MISSING_REFUSAL.match(message):
        gaps = [t.choice("criterion", gap.strip()) for gap in found["gaps"].split(",")]
        stage = rules.stage(found["stage"])
        return t(
            "deal.refused_missing",
            stage=stage_label(page, stage, found["stage"]),
            missing=t("common.list_sep").join(gaps),
        )
    if found := SAME_REFUSAL.match(message):
        stage = rules.stage(found["stage"])
        return t("deal.refused_same", stage=stage_label(page, stage, found["stage"]))
    if found := CLOSED_REFUSAL.match(message):
        return t("deal.refused_closed", status=t.choice("deal_status", found["status"]))
    if message.startswith("no stage "):
        return t("deal.refused_stage")
    if message.startswith("a lost deal needs a reason"):
        return t("deal.refused_lost_reason")
    return plain_text(page, message)


# --- list and board ------------------------------------------------------------------------


def _filters(page: Page) -> dict[str, str]:
    params = page.request.query_params
    mine_default = "1" if page.me.role is Role.sales else "0"
    return {
        "view": "board" if params.get("view") == "board" else "",
        "pipeline": params.get("pipeline", "").strip(),
        "stage": params.get("stage", "").strip(),
        "status": params.get("status", "").strip(),
        "mine": "1" if params.get("mine", mine_default) == "1" else "0",
    }


@router.get("/deals")
async def deal_list(request: Request) -> Response:
    async def body(page: Page) -> Response:
        page.me.require_role(*SALES)
        filters = _filters(page)
        raw = page.request.query_params.get("page", "1")
        number = min(int(raw), 100_000) if raw.isdigit() and raw != "0" else 1
        wanted: dict[str, Any] = {
            k: v for k, v in filters.items() if v and k in ("pipeline", "stage", "status")
        }
        wanted.update(mine=filters["mine"] == "1", page=number, size=PAGE_SIZE)
        problems = Problems()
        try:
            query = DealQuery.model_validate(wanted)
        except ValidationError as exc:
            problems = page.problems(exc)
            query = DealQuery(mine=filters["mine"] == "1", size=PAGE_SIZE)
        pipeline_name = query.pipeline or "default"
        rules = await _policy(page, pipeline_name)
        board = filters["view"] == "board"
        columns: list[dict[str, Any]] = []
        result = None
        if board:
            board_query = query.model_copy(update={"pipeline": pipeline_name, "stage": None})
            totals = await deals.stage_totals(page.session, actor=page.me, query=board_query)
            for stage in rules.stages:
                cards = await deals.search(
                    page.session,
                    actor=page.me,
                    query=board_query.model_copy(
                        update={"stage": stage.key, "size": BOARD_CARDS, "sort": "-amount"}
                    ),
                )
                columns.append({"stage": stage, "total": totals.get(stage.key), "cards": cards})
            shown = [d for c in columns for d in c["cards"].items]
        else:
            result = await deals.search(page.session, actor=page.me, query=query)
            shown = result.items

        def link(**change: Any) -> str:
            merged = {**filters, **change}
            return "/deals?" + urlencode({k: v for k, v in merged.items() if v})

        return page.render(
            "deals/list.html",
            title=page.t("deals.title_mine" if filters["mine"] == "1" else "deals.title_team"),
            filters=filters,
            board=board,
            columns=columns,
            result=result,
            rules=rules,
            label=lambda key: stage_label(page, rules.stage(key), key),
            pipelines=await deals.pipeline_names(page.session),
            statuses=list(DealStatus),
            customers=await _customer_names(page, {d.customer_id for d in shown}),
            users=await _user_names(page),
            pages=max(1, -(-result.total // PAGE_SIZE)) if result else 1,
            current=query.page,
            link=link,
            page_link=lambda n: link(page=n),
            problems=problems,
        )

    return await view(request, body)


# --- a new deal ----------------------------------------------------------------------------


async def _render_new(
    page: Page,
    *,
    values: Mapping[str, Any],
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    page.me.require_role(*SALES)
    raw = str(values.get("customer_id", ""))
    owner = None
    contacts: list[customer.Contact] = []
    if raw:
        owner = await customer.get(
            page.session, actor=page.me, customer_id=record_id(raw, "customer_id")
        )
        contacts = await customer.list_contacts(page.session, actor=page.me, customer_id=owner.id)
    return page.render(
        "deals/new.html",
        status=status,
        owner=owner,
        values=values,
        problems=problems or Problems(),
        pipelines=[
            (p, page.t("deals.pipeline_default") if p == "default" else p)
            for p in await deals.pipeline_names(page.session)
        ],
        contact_options=[(c.id, c.name) for c in contacts],
    )


@router.get("/deals/new")
async def new_deal(request: Request) -> Response:
    async def body(page: Page) -> Response:
        customer_id = page.request.query_params.get("customer_id", "")
        return await _render_new(page, values={"customer_id": customer_id, "pipeline": "default"})

    return await view(request, body)


def _fields(form: FormData, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: _text(form, name) for name in names}


@router.post("/deals/new")
async def create_deal(request: Request) -> Response:
    """The API's own create: the row, then the deal's workflow, before the commit."""

    async def action(page: Page, form: FormData) -> Response:
        page.me.require_role(*SALES)
        fields = _fields(form, ("customer_id", "pipeline", *EDIT_FIELDS))
        data = DealCreate.model_validate({k: v for k, v in fields.items() if v is not None})
        created = await deal_routes.create_deal(
            data=data,
            actor=page.me,
            session=page.session,
            temporal=await page.request.app.state.temporal.client(),
            settings=page.settings,
        )
        return redirect(f"/deals/{created.id}", flash="deal_created")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        return await _render_new(
            page,
            values={k: str(v) for k, v in form.items()},
            problems=page.problems(exc),
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender, own_fields=("customer_id",))


# --- one deal ------------------------------------------------------------------------------


def _values_of(row: DealRead) -> dict[str, str]:
    values = {name: getattr(row, name) for name in EDIT_FIELDS}
    return {k: "" if v is None else str(v) for k, v in values.items()}


async def _render_deal(
    page: Page,
    deal_id: int,
    *,
    values: Mapping[str, Any] | None = None,
    problems: Problems | None = None,
    move_values: Mapping[str, Any] | None = None,
    move_problems: Problems | None = None,
    refusal: str | None = None,
    status: int = 200,
) -> Response:
    page.me.require_role(*SALES)
    session, me = page.session, page.me
    row = DealRead.model_validate(await deals.get(session, actor=me, deal_id=deal_id))
    owner_row = await customer.get(session, actor=me, customer_id=row.customer_id)
    contacts = await customer.list_contacts(session, actor=me, customer_id=row.customer_id)
    rules = await _policy(page, row.pipeline)
    open_stages = [s for s in rules.stages if s.outcome is None]
    current = rules.stage(row.stage)
    passed = {s.key for s in open_stages[: rules.open_order(row.stage)]}
    is_open = row.status is DealStatus.open
    can_write = is_open and await user.answers_for(session, actor=me, owner_id=row.owner_id)
    return page.render(
        "deals/detail.html",
        status=status,
        row=row,
        customer_row=owner_row,
        contacts={c.id: c.name for c in contacts},
        contact_options=[(c.id, c.name) for c in contacts],
        rules=rules,
        current=current,
        bar=[s for s in rules.stages if s.outcome is None or s.key == row.stage],
        passed=passed,
        label=lambda key: stage_label(page, rules.stage(key), key),
        move_options=[
            (s.key, stage_label(page, s))
            for s in rules.stages
            if s.key != row.stage and s.outcome is not Outcome.lost
        ],
        lost_options=[(r, r) for r in rules.lost_reasons],
        lost_stage=next(s.key for s in rules.stages if s.outcome is Outcome.lost),
        history=await deals.history(session, deal_id=row.id),
        quotes=await quotes.list_for_deal(session, actor=me, deal_id=row.id),
        contracts=(
            await contracts.search(session, actor=me, query=ContractQuery(deal_id=row.id))
        ).items,
        users=await _user_names(page),
        can_write=can_write,
        values=values or _values_of(row),
        problems=problems or Problems(),
        move_values=move_values or {},
        move_problems=move_problems or Problems(),
        refusal=refusal,
    )


@router.get("/deals/{deal_id}")
async def deal_page(request: Request, deal_id: str) -> Response:
    async def body(page: Page) -> Response:
        return await _render_deal(page, record_id(deal_id, "deal_id"))

    return await view(request, body)


@router.post("/deals/{deal_id}/edit")
async def edit_deal(request: Request, deal_id: str) -> Response:
    """Plain fields through the API's route; a blank field clears it."""

    async def action(page: Page, form: FormData) -> Response:
        page.me.require_role(*SALES)
        number = record_id(deal_id, "deal_id")
        data = DealUpdate.model_validate(_fields(form, EDIT_FIELDS))
        await deal_routes.update_deal(
            deal_id=number, data=data, actor=page.me, session=page.session
        )
        return redirect(f"/deals/{number}", flash="deal_saved")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        return await _render_deal(
            page,
            record_id(deal_id, "deal_id"),
            values={k: str(v) for k, v in form.items()},
            problems=page.problems(exc),
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender, own_fields=("deal_id",))


@router.post("/deals/{deal_id}/move")
async def move_deal(request: Request, deal_id: str) -> Response:
    """The workflow Update `move`, sent by the API's own route."""

    async def action(page: Page, form: FormData) -> Response:
        page.me.require_role(*SALES)
        number = record_id(deal_id, "deal_id")
        row = await deals.get(page.session, actor=page.me, deal_id=number)
        rules = await _policy(page, row.pipeline)
        data = StageMove.model_validate(_fields(form, ("stage", "lost_reason", "note")))
        temporal = await page.request.app.state.temporal.client()
        await through_workflow(
            page,
            lambda: deal_routes.move_deal(
                request=page.request,
                deal_id=number,
                data=data,
                actor=page.me,
                session=page.session,
                temporal=temporal,
                settings=page.settings,
            ),
            lambda p, message: refusal_text(p, rules, message),
        )
        return redirect(f"/deals/{number}", flash="deal_moved")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        refusal = exc.message if isinstance(exc, Refusal) else None
        return await _render_deal(
            page,
            record_id(deal_id, "deal_id"),
            move_values={k: str(v) for k, v in form.items()},
            move_problems=None if refusal else page.problems(exc),
            refusal=refusal,
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender, own_fields=("deal_id",))


# --- on the customer's profile -------------------------------------------------------------


async def customer_business(page: Page, customer_id: int) -> dict[str, Any]:
    """The customer's latest deals, contracts and orders, for the profile's compact section."""
    session, me = page.session, page.me
    found = await deals.search(
        session, actor=me, query=DealQuery(customer_id=customer_id, size=PROFILE_ROWS)
    )
    signed = await contracts.search(
        session, actor=me, query=ContractQuery(customer_id=customer_id, size=PROFILE_ROWS)
    )
    ordered, _total = await orders.search(
        session, actor=me, query=OrderQuery(customer_id=customer_id, size=PROFILE_ROWS)
    )
    labels: dict[str, str] = {}
    for pipeline_name in {d.pipeline for d in found.items}:
        rules = await _policy(page, pipeline_name)
        labels.update({s.key: stage_label(page, s) for s in rules.stages})
    return {
        "deals": found.items,
        "deal_total": found.total,
        "stage_names": labels,
        "contracts": signed.items,
        "orders": ordered,
        "can_add_deal": me.role in (Role.admin, *SALES),
    }
