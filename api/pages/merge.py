"""Duplicate review pages: likely duplicates as groups, each a merge form, the merge's result
with its undo, and the page an old link to a merged-away customer lands on.

The merge, the undo and the list go through the API's own route functions, so the pages apply
the same merge rules and the same after-effects (the ERP push, the order workflows told once
the transaction has committed, run here as the redirect's background tasks).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import Response
from sqlalchemy import select
from starlette.datastructures import FormData

from api import i18n
from api import merge as merge_routes
from api.pages.base import (
    Page,
    Problem,
    Problems,
    field_label,
    record_id,
    redirect,
    status_of,
    submit,
    view,
)
from domain import custom_field, customer, user
from domain.access import Role
from domain.customer import Customer, Kind
from domain.customer.schemas import COMPANY_ONLY, PERSON_ONLY
from domain.db import utcnow
from domain.errors import DomainError
from domain.merge import DuplicateGroup, MergeRead, MergeRequest, service
from domain.merge.models import Key

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 20
USER_FIELDS = ("owner_id",)
PHONE_FIELDS = ("phone", "billing_phone")
REFUSALS = (
    (re.compile(r"#(?P<id>\d+) is a (?P<kind>\w+), the survivor a (?P<survivor>\w+)"), "kind"),
    (re.compile(r"two of these customers both have (?P<table>\S+) with (?P<shown>.*); "), "unique"),
    (re.compile(r"a merge can be undone within (?P<days>\d+) days"), "window"),
    (re.compile(r"the survivor was merged into #(?P<id>\d+) since"), "merged_since"),
    (re.compile(r"the survivor's (?P<field>\S+) has changed since the merge"), "changed"),
    (re.compile(r"#(?P<id>\d+) is no longer archived as merged into #(?P<survivor>\d+)"),
     "not_archived"),
)
"""Service refusals that carry ids or names: matched here so they read in the page's language."""


# --- the review list -----------------------------------------------------------------------


@dataclass
class FieldChoice:
    """One field whose values differ: each record's value, and whose wins."""

    name: str
    label: str
    options: list[tuple[int, str]]
    default: int
    """Whose value wins if nobody picks (what the service does with no choice)."""
    chosen: int


@dataclass
class GroupForm:
    """A duplicate group and the state of its merge form."""

    key: str
    group: DuplicateGroup
    survivor: int
    ticked: set[int]
    fields: list[FieldChoice]
    problems: Problems = field(default_factory=Problems)
    open: bool = False


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _value(row: Customer, name: str) -> Any:
    if name.startswith("custom."):
        return (row.custom or {}).get(name.removeprefix("custom."))
    return getattr(row, name)


def _shown(page: Page, name: str, value: Any, users: Mapping[int, user.User]) -> str:
    """A field value as the form and the result page show it."""
    if _empty(value):
        return page.t("duplicates.empty_value")
    if name == "stage":
        return page.t.choice("stage", value)
    if name == "gender":
        return page.t.choice("gender", value)
    if name == "size":
        return page.t("size.people", n=value)
    if name in USER_FIELDS:
        member = users.get(value)
        return member.display_name if member else f"#{value}"
    if name in PHONE_FIELDS:
        return page.phone(value)
    if name in ("parent_id", "referrer_id", "service_team_id"):
        return f"#{value}"
    if isinstance(value, list):
        return page.t("common.list_sep").join(str(v) for v in value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _int(raw: Any) -> int | None:
    text = str(raw or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else None


def _group_form(
    page: Page,
    group: DuplicateGroup,
    rows: Mapping[int, Customer],
    users: Mapping[int, user.User],
    labels: Mapping[str, str],
    form: FormData | None = None,
) -> GroupForm:
    """The merge form of a group: as first shown, or as it was posted (then its picks kept).

    The defaults mirror what the service does with no choice: the survivor's value, else the
    first merged record's that has one. A pick left at its shown default is not sent, so the
    service decides it for whichever survivor was finally chosen."""
    ids = [c.id for c in group.customers]
    members = [rows[i] for i in ids if i in rows]
    survivor = _int(form.get("survivor_id")) if form else None
    if survivor not in ids:
        survivor = ids[0]
    ticked = (
        {i for i in (_int(v) for v in form.getlist("absorbed_ids")) if i in ids}
        if form else set(ids)
    )
    ticked.discard(survivor)
    kept = rows[survivor]
    other_kind = PERSON_ONLY if kept.kind == Kind.company.value else COMPANY_ONLY
    names = [f for f in service.FIELDS if f not in other_kind]
    names += sorted({f"custom.{k}" for c in members for k in (c.custom or {})})
    order = [kept, *(c for c in members if c.id in ticked)]
    fields = []
    for name in names:
        values = {c.id: _value(c, name) for c in members}
        if len({None if _empty(v) else repr(v) for v in values.values()}) < 2:
            continue
        default = next((c.id for c in order if not _empty(values[c.id])), survivor)
        chosen = default
        if form is not None:
            picked = _int(form.get(f"pick.{name}"))
            if picked in values and str(picked) != form.get(f"shown.{name}"):
                chosen = picked
        options = [(c.id, _shown(page, name, values[c.id], users)) for c in members]
        fields.append(FieldChoice(name, labels.get(name) or field_label(name, page.t),
                                  options, default, chosen))
    return GroupForm(",".join(map(str, ids)), group, survivor, ticked, fields)


async def _render_list(
    page: Page,
    number: int,
    *,
    form: FormData | None = None,
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    page.me.require_role(Role.sales_manager)
    result = await merge_routes.list_duplicates(
        actor=page.me, session=page.session, settings=page.settings, page=number, size=PAGE_SIZE
    )
    wanted = {c.id for g in result.items for c in g.customers}
    rows = {
        c.id: c
        for c in await page.session.scalars(select(Customer).where(Customer.id.in_(wanted)))
    } if wanted else {}
    users = {u.id: u for u in await user.list_users(page.session)}
    defs = await custom_field.list_fields(page.session, entity="customer", include_retired=True)
    labels = {
        f"custom.{d.key}": d.label_en if page.lang == "en" and d.label_en else d.label
        for d in defs
    }
    posted = str(form.get("group") or "") if form else ""
    groups = []
    for group in result.items:
        key = ",".join(str(c.id) for c in group.customers)
        mine = form is not None and key == posted
        built = _group_form(page, group, rows, users, labels, form if mine else None)
        if mine and problems:
            built.problems, built.open, problems = problems, True, None
        groups.append(built)
    return page.render(
        "customers/duplicates.html",
        status=status,
        result=result,
        groups=groups,
        names={c.id: c.name for g in result.items for c in g.customers},
        users=users,
        pages=max(1, -(-result.total // PAGE_SIZE)),
        current=number,
        page_link=lambda n: f"/customers/duplicates?page={n}",
        problems=problems or Problems(),
        reason_text=lambda r: _reason(page, r),
    )


def _reason(page: Page, reason: Any) -> str:
    if reason.key is Key.name:
        if reason.score == 100:
            return page.t("duplicates.reason.name_same")
        return page.t("duplicates.reason.name", score=f"{reason.score:g}")
    value = page.phone(reason.value) if reason.key is Key.phone else reason.value
    return page.t(f"duplicates.reason.{reason.key.value}", value=value)


def _page_number(raw: Any) -> int:
    number = _int(raw)
    return number if number and number <= 100_000 else 1


def _label(page: Page, name: str | None) -> str:
    """What a refusal's field is called above the form: `fields.city` is the city field,
    `absorbed_ids.1` the records to merge in; the merge itself needs no name."""
    if not name or name == "merge_id":
        return ""
    base = name.removeprefix("fields.").split(".", 1)[0]
    return field_label(base, page.t) if base != "custom" else name.removeprefix("fields.")


def _refusal(page: Page, exc: BaseException) -> Problems:
    """The service's refusal in the page's language, next to the form that asked."""
    items = page.problems(exc).items
    if isinstance(exc, DomainError) and page.t.error(exc.message) == exc.message:
        for pattern, key in REFUSALS:
            found = pattern.search(exc.message)
            if found:
                parts = found.groupdict()
                if key == "kind":
                    parts = {**parts, "kind": page.t.choice("kind", parts["kind"]),
                             "survivor": page.t.choice("kind", parts["survivor"])}
                if key == "changed":
                    parts["field"] = field_label(parts["field"], page.t)
                items = [Problem(exc.field, page.t(f"merge.refusal.{key}", **parts))]
                break
    labels = {p.field: _label(page, p.field) for p in items if p.field}
    return Problems(items, labels, page.t("common.colon"))


@router.get("/customers/duplicates")
async def duplicates_page(request: Request) -> Response:
    number = _page_number(request.query_params.get("page"))

    async def body(page: Page) -> Response:
        return await _render_list(page, number)

    return await view(request, body)


@router.post("/customers/duplicates/merge")
async def merge_group(request: Request) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        survivor = form.get("survivor_id")
        absorbed = [v for v in form.getlist("absorbed_ids") if v != survivor]
        picks = {
            key.removeprefix("pick."): value
            for key, value in form.multi_items()
            if key.startswith("pick.") and value != form.get(f"shown.{key.removeprefix('pick.')}")
        }
        data = MergeRequest.model_validate(
            {"survivor_id": survivor, "absorbed_ids": absorbed, "fields": picks}
        )
        tasks = BackgroundTasks()
        record = await merge_routes.merge_customers(
            data=data, actor=page.me, session=page.session, settings=page.settings,
            request=page.request, background=tasks,
        )
        response = redirect(f"/customers/merges/{record.id}", flash="customers_merged")
        response.background = tasks
        return response

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        return await _render_list(
            page, _page_number(form.get("page")), form=form, problems=_refusal(page, exc),
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender)


# --- the result and its undo ---------------------------------------------------------------


async def _render_result(
    page: Page, merge_id: int, *, problems: Problems | None = None, status: int = 200
) -> Response:
    record: MergeRead = await merge_routes.get_merge(
        merge_id=merge_id, actor=page.me, session=page.session, settings=page.settings
    )
    session = page.session
    names = {
        i: await service.name_of(session, customer_id=i)
        for i in (record.survivor_id, *record.absorbed_ids)
    }
    users = {u.id: u for u in await user.list_users(session)}
    moved = [
        (
            i,
            [
                (page.t(f"merge.moved.{name}") if i18n.has(f"merge.moved.{name}") else name,
                 len(rows))
                for name, rows in sorted(record.moved.get(str(i), {}).items())
            ],
        )
        for i in record.absorbed_ids
    ]
    shown = [f for f in record.after if f not in ("name_key", "tags", "custom")]
    changed = [
        (field_label(f, page.t), _shown(page, f, record.before.get(f), users),
         _shown(page, f, record.after[f], users))
        for f in sorted(shown)
    ]
    for key in ("tags", "custom"):
        if key in record.after:
            changed.append((field_label(key, page.t), _plain(record.before.get(key)),
                            _plain(record.after[key])))
    return page.render(
        "customers/merge.html",
        status=status,
        record=record,
        names=names,
        moved=moved,
        changed=changed,
        can_undo=record.undone_at is None and utcnow() <= record.undo_until,
        problems=problems or Problems(),
    )


def _plain(value: Any) -> str:
    if isinstance(value, dict):
        return "；".join(f"{k}={v}" for k, v in sorted(value.items()) if not _empty(v))
    if isinstance(value, list):
        return "、".join(map(str, value))
    return "" if value is None else str(value)


@router.get("/customers/merges/{merge_id}")
async def merge_result(request: Request, merge_id: str) -> Response:
    async def body(page: Page) -> Response:
        return await _render_result(page, record_id(merge_id, "merge_id"))

    return await view(request, body)


@router.post("/customers/merges/{merge_id}/undo")
async def undo_merge(request: Request, merge_id: str) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        number = record_id(merge_id, "merge_id")
        tasks = BackgroundTasks()
        await merge_routes.undo_merge(
            merge_id=number, actor=page.me, session=page.session, settings=page.settings,
            request=page.request, background=tasks,
        )
        response = redirect(f"/customers/merges/{number}", flash="merge_undone")
        response.background = tasks
        return response

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        return await _render_result(
            page, record_id(merge_id, "merge_id"), problems=_refusal(page, exc),
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender, own_fields=("merge_id",))


# --- an old link to a merged-away customer ------------------------------------------------


async def merged_away(page: Page, customer_id: int, survivor_id: int) -> Response:
    """What a merged-away customer's profile shows: where it went, with a link (404, as the
    API answers, since the record itself is archived)."""
    survivor = await customer.get(page.session, actor=page.me, customer_id=survivor_id)
    return page.render(
        "customers/merged.html", status=404, customer_id=customer_id, survivor=survivor
    )
