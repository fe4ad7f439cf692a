"""The imports page (admins): upload a spreadsheet, choose sheet, entity and column mapping, read
the dry-run report, confirm with a merge strategy and mode, follow the progress, cancel, and
download the error report or a template.

Every action goes through the API's own route functions (service checks, the import's
workflow), so the page can do nothing the API refuses. The progress bar is the one script of
the pages (api/static/imports.js): it polls GET /api/imports/<id> while the import runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData, UploadFile
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from api import imports as routes
from api.pages.base import CSP, Page, Problems, record_id, redirect, status_of, submit, view
from domain.errors import Conflict, Invalid
from domain.imports import Entity, Import, Status, Strategy, service
from domain.imports.columns import HISTORY
from domain.imports.models import FINISHED
from domain.imports.schemas import ImportOptions
from domain.imports.template import Lang

router = APIRouter(prefix="/imports", include_in_schema=False)

UPLOAD_PATH = "/imports"
RUNNING = (Status.checking.value, Status.importing.value)
SCRIPT_CSP = f"{CSP}; script-src 'self'; connect-src 'self'"
"""This page alone runs a script: its own static file, polling this site's API."""
PROBLEMS_SHOWN = 200
MERGED = (Entity.customers, Entity.contacts)
"""Entities whose matched rows follow a merge strategy; leads and history rows are skipped."""


def _lang(page: Page) -> Lang:
    return "en" if page.lang == "en" else "zh-CN"


async def _mappings(page: Page) -> dict[str, list[str]]:
    return {
        e.value: [m.name for m in await service.list_mappings(page.session, actor=page.me,
                                                               entity=e)]
        for e in Entity
    }


async def _render_list(
    page: Page, *, values: Mapping[str, Any] | None = None, problems: Problems | None = None,
    status: int = 200,
) -> Response:
    page.require_admin()
    return page.render(
        "imports/list.html",
        status=status,
        imports=await service.recent(page.session, actor=page.me),
        entities=list(Entity),
        mappings=await _mappings(page),
        template_lang=_lang(page),
        values=values or {"entity": Entity.customers.value},
        problems=problems or Problems(),
    )


async def _render_detail(
    page: Page, imp: Import, *, values: Mapping[str, Any] | None = None,
    problems: Problems | None = None, status: int = 200,
) -> Response:
    entity = Entity(imp.entity)
    known = await service.known_columns(page.session, entity)
    english = page.lang == "en"
    fields = [(c.key, c.en if english else c.zh, c.required) for c in known]
    response = page.render(
        "imports/detail.html",
        status=status,
        imp=imp,
        entity=entity,
        fields=fields,
        labels={key: label for key, label, _ in fields},
        mapping=(values or {}).get("mapping", imp.mapping),
        values=values or {"strategy": imp.strategy, "all_or_nothing": imp.all_or_nothing},
        strategies=[s.value for s in Strategy] if entity in MERGED else [],
        history=entity in HISTORY,
        running=imp.status in RUNNING,
        finished=imp.status in {s.value for s in FINISHED},
        report=await service.problems(page.session, actor=page.me, import_id=imp.id,
                                      limit=PROBLEMS_SHOWN),
        problem_total=await service.problem_count(page.session, import_id=imp.id),
        problems=problems or Problems(),
    )
    response.headers["content-security-policy"] = SCRIPT_CSP
    return response


@router.get("")
async def imports_page(request: Request) -> Response:
    async def body(page: Page) -> Response:
        return await _render_list(page)

    return await view(request, body)


@router.post("")
async def upload(request: Request) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        page.require_admin()
        file = form.get("file")
        if not isinstance(file, UploadFile) or not file.filename:
            raise Invalid("choose a file to upload", field="file")
        try:
            entity = Entity(str(form.get("entity") or ""))
        except ValueError:
            raise Invalid("choose what the file holds", field="entity") from None
        data = await file.read(page.settings.import_max_bytes + 1)
        imp = await service.upload(
            page.session, actor=page.me, settings=page.settings, entity=entity,
            filename=file.filename, data=data,
            mapping_name=str(form.get("mapping_name") or "") or None,
        )
        return redirect(f"/imports/{imp.id}")

    async def again(page: Page, form: FormData, exc: BaseException) -> Response:
        values = {"entity": str(form.get("entity") or "")}
        return await _render_list(page, values=values, problems=page.problems(exc),
                                  status=status_of(exc))

    return await submit(request, action, rerender=again)


@router.get("/{import_id}")
async def import_page(request: Request, import_id: str) -> Response:
    async def body(page: Page) -> Response:
        page.require_admin()
        imp = await service.get(page.session, actor=page.me,
                                import_id=record_id(import_id, "import_id"))
        return await _render_detail(page, imp)

    return await view(request, body)


def _options(imp: Import, form: FormData) -> ImportOptions:
    """The options as the form sends them: one select per column of the sheet."""
    sheet = str(form.get("sheet") or imp.sheet)
    mapping = None
    if sheet == imp.sheet:  # another sheet has other columns: its mapping is suggested anew
        mapping = {header: str(form.get(f"map-{index}") or "")
                   for index, header in enumerate(imp.headers)}
    return ImportOptions.model_validate({
        "sheet": sheet,
        "mapping": mapping,
        "strategy": str(form.get("strategy") or Strategy.skip.value),
        "all_or_nothing": form.get("all_or_nothing") == "on",
        "save_mapping_as": str(form.get("save_mapping_as") or "").strip() or None,
    })


async def _refused(call: Any) -> Any:
    """A workflow's refusal (not waiting for a decision, invalid rows) as the page's 409/422."""
    try:
        return await call
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(exc)
        kind = cause.type if isinstance(cause, ApplicationError) else None
        raise (Invalid if kind == "Invalid" else Conflict)(message) from None


def _act(request: Request, import_id: str, step: str) -> Any:
    async def action(page: Page, form: FormData) -> Response:
        page.require_admin()
        number = record_id(import_id, "import_id")
        temporal = await request.app.state.temporal.client()
        if step == "check":
            imp = await service.get(page.session, actor=page.me, import_id=number)
            await _refused(routes.check(number, _options(imp, form), page.me, request,
                                        page.settings, temporal))
        elif step == "confirm":
            await _refused(routes.confirm(number, page.me, request, page.settings, temporal))
        else:
            await routes.cancel(number, page.me, request, page.settings, temporal)
        return redirect(f"/imports/{number}")

    async def again(page: Page, form: FormData, exc: BaseException) -> Response:
        imp = await service.get(page.session, actor=page.me,
                                import_id=record_id(import_id, "import_id"))
        values: dict[str, Any] = {
            "strategy": str(form.get("strategy") or imp.strategy),
            "all_or_nothing": form.get("all_or_nothing") == "on",
            "save_mapping_as": str(form.get("save_mapping_as") or ""),
            "mapping": {h: str(form.get(f"map-{i}") or "") for i, h in enumerate(imp.headers)}
            if step == "check" else imp.mapping,
        }
        return await _render_detail(page, imp, values=values, problems=page.problems(exc),
                                    status=status_of(exc))

    return submit(request, action, rerender=again, own_fields=("import_id",))


@router.post("/{import_id}/check")
async def check(request: Request, import_id: str) -> Response:
    return await _act(request, import_id, "check")


@router.post("/{import_id}/confirm")
async def confirm(request: Request, import_id: str) -> Response:
    return await _act(request, import_id, "confirm")


@router.post("/{import_id}/cancel")
async def cancel(request: Request, import_id: str) -> Response:
    return await _act(request, import_id, "cancel")
