"""Admin pages: custom fields per entity, users and teams, the audit log."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from api.pages.base import Page, Problems, record_id, redirect, status_of, submit, view
from domain import audit, custom_field, user
from domain.access import ApproverGroup, Role
from domain.custom_field import FieldEntity, FieldType

router = APIRouter(prefix="/admin", include_in_schema=False)

AUDIT_PAGE = 50


def _text(form: FormData, name: str) -> str | None:
    value = str(form.get(name) or "").strip()
    return value or None


def _entity(raw: Any) -> FieldEntity:
    try:
        return FieldEntity(raw)
    except ValueError:
        return FieldEntity.customer


# --- custom fields -------------------------------------------------------------------------


async def _render_fields(
    page: Page,
    entity: FieldEntity,
    *,
    values: Mapping[str, Any] | None = None,
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    page.require_admin()
    rows = await custom_field.list_fields(page.session, entity=entity, include_retired=True)
    return page.render(
        "admin/custom_fields.html",
        status=status,
        entity=entity,
        entities=list(FieldEntity),
        rows=rows,
        type_options=[(f.value, page.t.choice("field_type", f)) for f in FieldType],
        values=values or {"type": FieldType.text.value},
        problems=problems or Problems(),
        section="fields",
    )


@router.get("/custom-fields")
async def fields(request: Request) -> Response:
    entity = _entity(request.query_params.get("entity"))

    async def body(page: Page) -> Response:
        return await _render_fields(page, entity)

    return await view(request, body)


@router.post("/custom-fields")
async def create_field(request: Request) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        page.require_admin()
        raw_options = str(form.get("options") or "")
        options = [line.strip() for line in raw_options.replace("，", "\n").splitlines()]
        data: dict[str, Any] = {
            "entity": _text(form, "entity"),
            "key": _text(form, "key") or "",
            "label": _text(form, "label") or "",
            "label_en": _text(form, "label_en"),
            "type": _text(form, "type"),
            "required": form.get("required") == "1",
            "options": [o for o in options if o],
            "min_value": _text(form, "min_value"),
            "max_value": _text(form, "max_value"),
            "position": _text(form, "position") or 0,
        }
        created = custom_field.CustomFieldCreate.model_validate(data)
        await custom_field.create(page.session, actor=page.me, data=created)
        target = f"/admin/custom-fields?entity={created.entity.value}"
        return redirect(target, flash="field_created")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        return await _render_fields(
            page,
            _entity(form.get("entity")),
            values={k: str(v) for k, v in form.items()},
            problems=page.problems(exc),
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender)


async def _switch_field(request: Request, field_id: str, *, retire: bool) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        page.require_admin()
        number = record_id(field_id, "field_id")
        change = custom_field.retire if retire else custom_field.restore
        row = await change(page.session, actor=page.me, field_id=number)
        flash = "field_retired" if retire else "field_restored"
        return redirect(f"/admin/custom-fields?entity={row.entity}", flash=flash)

    return await submit(request, action, own_fields=("field_id",))


@router.post("/custom-fields/{field_id}/retire")
async def retire_field(request: Request, field_id: str) -> Response:
    return await _switch_field(request, field_id, retire=True)


@router.post("/custom-fields/{field_id}/restore")
async def restore_field(request: Request, field_id: str) -> Response:
    return await _switch_field(request, field_id, retire=False)


# --- users and teams -----------------------------------------------------------------------


async def _render_users(
    page: Page,
    *,
    values: Mapping[str, Any] | None = None,
    problems: Problems | None = None,
    team_values: Mapping[str, Any] | None = None,
    team_problems: Problems | None = None,
    status: int = 200,
) -> Response:
    page.require_admin()
    users = await user.list_users(page.session)
    teams = await user.list_teams(page.session)
    return page.render(
        "admin/users.html",
        status=status,
        users=users,
        names={u.id: u.display_name for u in users},
        teams=teams,
        team_names={t.id: t.name for t in teams},
        members={t.id: sum(1 for u in users if u.team_id == t.id) for t in teams},
        role_options=[(r.value, page.t.choice("role", r)) for r in Role],
        group_options=[(g.value, page.t.choice("approver_group", g)) for g in ApproverGroup],
        team_options=[(t.id, t.name) for t in teams],
        manager_options=[(u.id, u.display_name) for u in users if u.active],
        values=values or {"role": Role.sales.value, "locale": "zh-CN"},
        problems=problems or Problems(),
        team_values=team_values or {},
        team_problems=team_problems or Problems(),
        section="users",
    )


@router.get("/users")
async def users(request: Request) -> Response:
    return await view(request, _render_users)


@router.post("/users")
async def create_user(request: Request) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        page.require_admin()
        names = ("username", "display_name", "role", "approver_group", "email", "phone")
        data: dict[str, Any] = {name: _text(form, name) for name in names}
        data["password"] = str(form.get("password") or "")
        data["team_id"] = _text(form, "team_id")
        data["locale"] = _text(form, "locale") or "zh-CN"
        created = user.UserCreate.model_validate({k: v for k, v in data.items() if v is not None})
        await user.create(page.session, actor=page.me, data=created)
        return redirect("/admin/users", flash="user_created")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        values = {k: str(v) for k, v in form.items() if k != "password"}
        return await _render_users(
            page, values=values, problems=page.problems(exc), status=status_of(exc)
        )

    return await submit(request, action, rerender=rerender)


@router.post("/teams")
async def create_team(request: Request) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        page.require_admin()
        data = {"name": _text(form, "name") or "", "manager_id": _text(form, "manager_id")}
        created = user.TeamCreate.model_validate(data)
        await user.create_team(page.session, actor=page.me, data=created)
        return redirect("/admin/users", flash="team_created")

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        return await _render_users(
            page,
            team_values={k: str(v) for k, v in form.items()},
            team_problems=page.problems(exc),
            status=status_of(exc),
        )

    return await submit(request, action, rerender=rerender)


# --- audit ---------------------------------------------------------------------------------


@router.get("/audit")
async def audit_log(request: Request) -> Response:
    raw = request.query_params.get("before_id", "")
    before_id = int(raw) if raw.isdigit() and 0 < int(raw) < 2**62 else None

    async def body(page: Page) -> Response:
        page.require_admin()
        rows = await audit.history(page.session, before_id=before_id, limit=AUDIT_PAGE)
        return page.render(
            "admin/audit.html",
            rows=rows,
            changes=lambda row: json.dumps(row.changes, ensure_ascii=False, default=str)[:600],
            older=rows[-1].id if len(rows) == AUDIT_PAGE else None,
            section="audit",
        )

    return await view(request, body)
