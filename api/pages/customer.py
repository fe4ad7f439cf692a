"""Customer pages: the list, the company/person form and the 360° profile.

The profile also takes a follow-up (which starts its reminder workflow exactly as the API does,
by calling the API route function) and a new contact.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from api import follow_up as follow_up_routes
from api.pages.base import (
    Page,
    Problems,
    record_id,
    redirect,
    split_tags,
    status_of,
    submit,
    view,
)
from api.pages.deal import customer_business
from api.pages.merge import merged_away
from api.pages.ticket import customer_tickets
from domain import custom_field, customer, follow_up, timeline, user
from domain.access import Role
from domain.custom_field import CustomField, FieldType
from domain.customer import Customer, Kind, Stage
from domain.customer.models import DecisionRole, Gender, Size
from domain.customer.schemas import COMPANY_ONLY, PERSON_ONLY, SortKey
from domain.customer.service import get_for_update
from domain.errors import Conflict, DomainError, NotFound

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
TIMELINE_SIZE = 20
COMMON_FIELDS = ("phone", "email", "wechat_id", "province", "city", "source", "notes")
SORTS: tuple[str, ...] = SortKey.__args__  # type: ignore[attr-defined]
FILTERS = ("q", "kind", "stage", "owner_id", "city", "tag", "sort")

TIMELINE_ICONS = {
    "follow_up.call": "☎",
    "follow_up.visit": "⚑",
    "follow_up.meeting": "◎",
    "follow_up.email": "✉",
    "follow_up.wechat": "✆",
    "follow_up.note": "✎",
    "follow_up.reminder": "⏰",
    "customer.created": "★",
    "customer.owner_changed": "⇄",
    "customer.stage_changed": "↗",
    "contact.added": "✚",
    "contact.removed": "✖",
}


# --- shared lookups ------------------------------------------------------------------------


async def _users(page: Page) -> dict[int, user.User]:
    return {u.id: u for u in await user.list_users(page.session)}


def _owner_choices(page: Page, users: Mapping[int, user.User]) -> list[user.User]:
    """Whom the actor may make owner: reps themselves, managers their teams, admins anyone."""
    me = page.me
    active = [u for u in users.values() if u.active]
    if me.is_admin:
        return active
    if me.role is Role.sales_manager:
        return [u for u in active if u.id == me.user_id or u.team_id in me.managed_team_ids]
    return [u for u in active if u.id == me.user_id]


def _custom_labels(page: Page, defs: list[CustomField]) -> dict[str, str]:
    return {f"custom.{d.key}": _def_label(page, d) for d in defs}


def _def_label(page: Page, definition: CustomField) -> str:
    if page.lang == "en" and definition.label_en:
        return definition.label_en
    return definition.label


def _custom_display(page: Page, definition: CustomField, value: Any, users: Mapping) -> str:
    """A stored custom value as text for the profile."""
    if value is None or value == "" or value == []:
        return ""
    type_ = FieldType(definition.type)
    if type_ is FieldType.boolean:
        return page.t("common.yes") if value else page.t("common.no")
    if type_ is FieldType.multi_select:
        return "、".join(value)
    if type_ is FieldType.datetime:
        return page.when(str(value).replace("Z", "+00:00"))
    if type_ is FieldType.money:
        return page.t("common.money_cny", amount=f"{float(value):,.2f}")
    if type_ is FieldType.user:
        member = users.get(value)
        return member.display_name if member else f"#{value}"
    return str(value)


def _custom_form_value(page: Page, definition: CustomField, value: Any) -> Any:
    """A stored custom value as its form input wants it."""
    if value is None:
        return [] if definition.type == FieldType.multi_select else ""
    type_ = FieldType(definition.type)
    if type_ is FieldType.multi_select:
        return list(value)
    if type_ is FieldType.boolean:
        return "true" if value else "false"
    if type_ is FieldType.datetime:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return moment.astimezone(page.zone).strftime("%Y-%m-%dT%H:%M")
    return str(value)


def _custom_from_form(page: Page, form: FormData, definition: CustomField) -> Any:
    name = f"cf.{definition.key}"
    if definition.type == FieldType.multi_select:
        return [str(v) for v in form.getlist(name)]
    raw = str(form.get(name) or "").strip()
    if not raw:
        return None
    if definition.type == FieldType.datetime:
        moment = page.parse_local(raw)
        return moment.isoformat() if moment else raw
    return raw


def _text(form: FormData, name: str) -> str | None:
    value = str(form.get(name) or "").strip()
    return value or None


# --- list ----------------------------------------------------------------------------------


@router.get("/customers")
async def customer_list(request: Request) -> Response:
    params = request.query_params

    async def body(page: Page) -> Response:
        filters = {k: params.get(k, "").strip() for k in FILTERS}
        wanted: dict[str, Any] = {k: v for k, v in filters.items() if v}
        if filters["tag"]:
            wanted["tag"] = [filters["tag"]]
        number = params.get("page", "1")
        wanted["page"] = number if number.isdigit() else "1"
        wanted["size"] = PAGE_SIZE
        problems = Problems()
        try:
            query = customer.CustomerQuery.model_validate(wanted)
            result = await customer.search(page.session, actor=page.me, query=query)
        except (ValidationError, DomainError) as exc:
            problems = page.problems(exc)
            query = customer.CustomerQuery(size=PAGE_SIZE)
            result = customer.Page[customer.CustomerRead](items=[], total=0, page=1, size=PAGE_SIZE)
        users = await _users(page)
        pages = max(1, -(-result.total // PAGE_SIZE))

        def link(**change: Any) -> str:
            merged = {k: v for k, v in filters.items() if v}
            merged.update({k: v for k, v in change.items()})
            return "/customers?" + urlencode({k: v for k, v in merged.items() if v})

        return page.render(
            "customers/list.html",
            result=result,
            filters=filters,
            users=users,
            owners=sorted(users.values(), key=lambda u: u.display_name),
            kinds=list(Kind),
            stages=list(Stage),
            sorts=SORTS,
            pages=pages,
            current=query.page,
            link=link,
            page_link=lambda n: link(page=n),
            problems=problems,
        )

    return await view(request, body)


# --- form ----------------------------------------------------------------------------------


async def _render_form(
    page: Page,
    *,
    row: Customer | None,
    kind: Kind,
    values: Mapping[str, Any],
    problems: Problems | None = None,
    duplicate: Mapping[str, Any] | None = None,
    status: int = 200,
) -> Response:
    defs = await custom_field.list_fields(page.session, entity="customer")
    users = await _users(page)
    choices = _owner_choices(page, users)
    if row is not None and row.owner_id in users and users[row.owner_id] not in choices:
        choices.append(users[row.owner_id])  # keep the current owner selectable
    return page.render(
        "customers/form.html",
        status=status,
        row=row,
        kind=kind,
        values=values,
        defs=defs,
        label=lambda d: _def_label(page, d),
        owners=choices,
        allow_blank_owner=page.me.role is not Role.sales,
        users=sorted(users.values(), key=lambda u: u.display_name),
        kinds=list(Kind),
        stages=list(Stage),
        sizes=list(Size),
        genders=list(Gender),
        problems=problems or Problems(labels=_custom_labels(page, defs)),
        duplicate=duplicate,
    )


def _values_from_row(page: Page, row: Customer, defs: list[CustomField]) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: getattr(row, name)
        for name in ("name", "stage", *COMMON_FIELDS, *COMPANY_ONLY, *PERSON_ONLY)
    }
    values = {k: ("" if v is None else str(v)) for k, v in values.items()}
    values["owner_id"] = str(row.owner_id or "")
    values["tags"] = "，".join(row.tags)
    for d in defs:
        values[f"cf.{d.key}"] = _custom_form_value(page, d, row.custom.get(d.key))
    return values


def _values_from_form(form: FormData, defs: list[CustomField]) -> dict[str, Any]:
    values: dict[str, Any] = {k: str(v) for k, v in form.items()}
    for d in defs:
        if d.type == FieldType.multi_select:
            values[f"cf.{d.key}"] = [str(v) for v in form.getlist(f"cf.{d.key}")]
    return values


async def _payload(page: Page, form: FormData, kind: Kind) -> dict[str, Any]:
    """The customer fields this form sends; blank means "no value" (cleared on an edit)."""
    own = COMPANY_ONLY if kind is Kind.company else PERSON_ONLY
    data: dict[str, Any] = {
        name: _text(form, name) for name in ("name", "stage", "owner_id", *COMMON_FIELDS, *own)
    }
    data["tags"] = split_tags(str(form.get("tags") or ""))
    defs = await custom_field.list_fields(page.session, entity="customer")
    data["custom"] = {d.key: _custom_from_form(page, form, d) for d in defs}
    return data


def _duplicate(exc: BaseException) -> dict[str, Any] | None:
    extra = getattr(exc, "extra", {}) or {}
    if "existing_id" not in extra:
        return None
    matches = extra.get("matches") or []
    first = matches[0] if matches else {}
    return {"id": extra["existing_id"], "name": first.get("name", ""), "field": exc.field}  # type: ignore[attr-defined]


def _form_problems(page: Page, exc: BaseException, defs: list[CustomField]) -> Problems:
    """A likely duplicate is said in the notice above the form; next to its field, briefly."""
    labels = _custom_labels(page, defs)
    if _duplicate(exc) is None:
        return page.problems(exc, labels)
    field = getattr(exc, "field", None)
    return page.problems(Conflict(page.t("duplicate.inline"), field=field), labels)


def _kind_of(raw: Any) -> Kind:
    return Kind.person if raw == Kind.person.value else Kind.company


@router.get("/customers/new")
async def new_customer(request: Request) -> Response:
    kind = _kind_of(request.query_params.get("kind"))

    async def body(page: Page) -> Response:
        values = {"stage": Stage.prospect.value, "owner_id": str(page.me.user_id or "")}
        return await _render_form(page, row=None, kind=kind, values=values)

    return await view(request, body)


@router.post("/customers/new")
async def create_customer(request: Request) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        kind = _kind_of(form.get("kind"))
        data = await _payload(page, form, kind)
        fields = {k: v for k, v in data.items() if v is not None}
        created = customer.CustomerCreate.model_validate({**fields, "kind": kind.value})
        row = await customer.create(
            page.session,
            actor=page.me,
            data=created,
            allow_duplicate=form.get("allow_duplicate") == "1",
        )
        return redirect(f"/customers/{row.id}", flash="customer_created")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        defs = await custom_field.list_fields(page.session, entity="customer")
        return await _render_form(
            page,
            row=None,
            kind=_kind_of(form.get("kind")),
            values=_values_from_form(form, defs),
            problems=_form_problems(page, exc, defs),
            duplicate=_duplicate(exc),
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender)


@router.get("/customers/{customer_id}/edit")
async def edit_customer(request: Request, customer_id: str) -> Response:
    async def body(page: Page) -> Response:
        row = await get_for_update(
            page.session, actor=page.me, customer_id=record_id(customer_id, "customer_id")
        )
        defs = await custom_field.list_fields(page.session, entity="customer")
        return await _render_form(
            page, row=row, kind=Kind(row.kind), values=_values_from_row(page, row, defs)
        )

    return await view(request, body)


@router.post("/customers/{customer_id}/edit")
async def update_customer(request: Request, customer_id: str) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        number = record_id(customer_id, "customer_id")
        row = await get_for_update(page.session, actor=page.me, customer_id=number)
        data = await _payload(page, form, Kind(row.kind))
        changes = customer.CustomerUpdate.model_validate(data)
        await customer.update(
            page.session,
            actor=page.me,
            customer_id=number,
            data=changes,
            allow_duplicate=form.get("allow_duplicate") == "1",
        )
        return redirect(f"/customers/{number}", flash="customer_saved")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        row = await customer.get(
            page.session, actor=page.me, customer_id=record_id(customer_id, "customer_id")
        )
        defs = await custom_field.list_fields(page.session, entity="customer")
        return await _render_form(
            page,
            row=row,
            kind=Kind(row.kind),
            values=_values_from_form(form, defs),
            problems=_form_problems(page, exc, defs),
            duplicate=_duplicate(exc),
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender, own_fields=("customer_id",))


# --- profile -------------------------------------------------------------------------------


def _chain(contacts: list[customer.Contact]) -> list[dict[str, Any]]:
    """The decision chain as a forest by `reports_to_id`; a broken or looping link is a root."""
    nodes = {c.id: {"contact": c, "children": []} for c in contacts}
    roots: list[dict[str, Any]] = []
    for c in contacts:
        boss, seen = c.reports_to_id, {c.id}
        while boss is not None and boss in nodes and boss not in seen:
            seen.add(boss)
            boss = nodes[boss]["contact"].reports_to_id
        if c.reports_to_id in nodes and boss is None:
            nodes[c.reports_to_id]["children"].append(nodes[c.id])
        else:
            roots.append(nodes[c.id])
    return roots


def _timeline_text(page: Page, event: timeline.TimelineEventRead, users: Mapping) -> str:
    """Lifecycle changes as words; the stored summary otherwise."""
    detail = event.detail or {}
    if event.kind == "customer.stage_changed":
        before, after = detail.get("before"), detail.get("after")
        return f"{page.t.choice('stage', before)} → {page.t.choice('stage', after)}"
    if event.kind == "customer.owner_changed":

        def name(uid: Any) -> str:
            member = users.get(uid)
            return member.display_name if member else page.t("common.nobody")

        return f"{name(detail.get('before'))} → {name(detail.get('after'))}"
    return event.summary


@router.get("/customers/{customer_id}")
async def profile(request: Request, customer_id: str) -> Response:
    async def body(page: Page) -> Response:
        number = record_id(customer_id, "customer_id")
        try:
            return await _render_profile(page, number)
        except NotFound as gone:
            if "merged_into" not in gone.extra:
                raise
            return await merged_away(page, number, gone.extra["merged_into"])

    return await view(request, body)


async def _render_profile(
    page: Page,
    customer_id: int,
    *,
    follow_up_values: Mapping[str, Any] | None = None,
    follow_up_problems: Problems | None = None,
    contact_values: Mapping[str, Any] | None = None,
    contact_problems: Problems | None = None,
    status: int = 200,
) -> Response:
    session, me = page.session, page.me
    row = await customer.get(session, actor=me, customer_id=customer_id)
    contacts = await customer.list_contacts(session, actor=me, customer_id=customer_id)
    subsidiaries = await customer.children(session, actor=me, customer_id=customer_id)
    parent = None
    if row.parent_id is not None:
        try:
            parent = await customer.get(session, actor=me, customer_id=row.parent_id)
        except NotFound:
            parent = None
    raw_page = page.request.query_params.get("tl", "1")
    tl_page = min(int(raw_page), 100_000) if raw_page.isdigit() and raw_page != "0" else 1
    events = await timeline.page(session, customer_id=customer_id, page=tl_page, size=TIMELINE_SIZE)
    defs = await custom_field.list_fields(session, entity="customer", include_retired=True)
    users = await _users(page)
    custom_rows = [
        (_def_label(page, d), _custom_display(page, d, row.custom.get(d.key), users), d)
        for d in defs
        if d.retired_at is None or row.custom.get(d.key) not in (None, "", [])
    ]
    return page.render(
        "customers/profile.html",
        status=status,
        row=row,
        owner=users.get(row.owner_id) if row.owner_id else None,
        contacts=contacts,
        chain=_chain(contacts),
        contact_names={c.id: c.name for c in contacts},
        parent=parent,
        parent_id=row.parent_id,
        subsidiaries=subsidiaries,
        events=events,
        tl_pages=max(1, -(-events.total // TIMELINE_SIZE)),
        event_text=lambda e: _timeline_text(page, e, users),
        icons=TIMELINE_ICONS,
        custom_rows=custom_rows,
        kind_options=[(k.value, page.t.choice("follow_up", k)) for k in follow_up.FollowUpKind],
        role_options=[(r.value, page.t.choice("decision_role", r)) for r in DecisionRole],
        contact_options=[(c.id, c.name) for c in contacts],
        user_names={u.id: u.display_name for u in users.values()},
        tl_link=lambda n: f"/customers/{row.id}?tl={n}#timeline",
        can_write=me.role in (Role.admin, Role.sales_manager, Role.sales),
        follow_up_values=follow_up_values or {"kind": "call"},
        follow_up_problems=follow_up_problems or Problems(),
        contact_values=contact_values or {},
        contact_problems=contact_problems or Problems(),
        business=await customer_business(page, customer_id),
        customer_tickets=await customer_tickets(page, customer_id),
    )


@router.post("/customers/{customer_id}/follow-ups")
async def log_follow_up(request: Request, customer_id: str) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        number = record_id(customer_id, "customer_id")
        next_raw = _text(form, "next_contact_at")
        next_at = page.parse_local(next_raw) if next_raw else None
        data = follow_up.FollowUpCreate.model_validate(
            {
                "kind": _text(form, "kind"),
                "summary": _text(form, "summary") or "",
                "next_step": _text(form, "next_step"),
                "contact_id": _text(form, "contact_id"),
                "next_contact_at": next_at if next_at is not None else next_raw,
            }
        )
        # The API's own route function: the same write and the same reminder workflow start.
        await follow_up_routes.log_follow_up(
            customer_id=number,
            data=data,
            actor=page.me,
            session=page.session,
            temporal=await page.request.app.state.temporal.client(),
            settings=page.settings,
        )
        return redirect(f"/customers/{number}#timeline", flash="follow_up_logged")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        return await _render_profile(
            page,
            record_id(customer_id, "customer_id"),
            follow_up_values={k: str(v) for k, v in form.items()},
            follow_up_problems=page.problems(exc),
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender, own_fields=("customer_id",))


@router.post("/customers/{customer_id}/contacts")
async def add_contact(request: Request, customer_id: str) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        number = record_id(customer_id, "customer_id")
        names = ("name", "title", "department", "mobile", "email", "wechat_id")
        fields = {k: _text(form, k) for k in (*names, "decision_role", "reports_to_id")}
        data = customer.ContactCreate.model_validate(
            {k: v for k, v in fields.items() if v is not None}
        )
        await customer.add_contact(page.session, actor=page.me, customer_id=number, data=data)
        return redirect(f"/customers/{number}#contacts", flash="contact_added")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        return await _render_profile(
            page,
            record_id(customer_id, "customer_id"),
            contact_values={k: str(v) for k, v in form.items()},
            contact_problems=page.problems(exc),
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender, own_fields=("customer_id",))
