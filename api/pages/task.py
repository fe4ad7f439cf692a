"""My inbox: open tasks due soonest first, with their countdown, and a button to finish one.

An approval task is answered here (approve, reject, request changes, with a comment) through
the API's own task route, which sends the answer to the approval's workflow; a refusal is
shown on that task in the user's language.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from api import task as task_routes
from api.pages.base import Page, Problems, due_text, record_id, redirect, status_of, submit, view
from api.pages.refusal import Refusal, through_workflow
from domain import task
from domain.db import utcnow

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50


async def _render_inbox(
    page: Page,
    *,
    problems: Problems | None = None,
    refused: tuple[int, str] | None = None,
    status: int = 200,
) -> Response:
    raw = page.request.query_params.get("page", "1")
    number = min(int(raw), 10_000) if raw.isdigit() and raw != "0" else 1
    inbox = await task.inbox(
        page.session,
        actor=page.me,
        assignee_id=page.me.user_id,
        status=task.TaskStatus.open,
        limit=PAGE_SIZE,
        offset=(number - 1) * PAGE_SIZE,
    )
    now = utcnow()
    return page.render(
        "tasks.html",
        status=status,
        inbox=inbox,
        current=number,
        pages=max(1, -(-inbox.total // PAGE_SIZE)),
        page_link=lambda n: f"/tasks?page={n}",
        due=lambda item: due_text(item.due_at, now, page.t),
        overdue=lambda item: item.due_at is not None and item.due_at < now,
        problems=problems or Problems(),
        refused=refused,
        approval=task_routes.APPROVAL,
    )


@router.get("/tasks")
async def inbox(request: Request) -> Response:
    return await view(request, _render_inbox)


@router.post("/tasks/{task_id}/complete")
async def complete(request: Request, task_id: str) -> Response:
    async def action(page: Page, form: FormData) -> Response:
        number = record_id(task_id, "task_id")
        data = task.TaskComplete.model_validate(
            {
                "decision": str(form.get("decision") or "") or None,
                "comment": str(form.get("comment") or "").strip() or None,
            }
        )
        temporal = await page.request.app.state.temporal.client()
        await through_workflow(
            page,
            lambda: task_routes.complete(
                request=page.request,
                task_id=number,
                data=data,
                actor=page.me,
                session=page.session,
                temporal=temporal,
            ),
        )
        flash = f"approval_{data.decision}" if data.decision else "task_done"
        return redirect("/tasks", flash=flash)

    async def rerender(page: Page, form: FormData, exc: BaseException) -> Response:
        if isinstance(exc, Refusal):
            refused = (record_id(task_id, "task_id"), exc.message)
            return await _render_inbox(page, refused=refused, status=exc.status)
        return await _render_inbox(page, problems=page.problems(exc), status=status_of(exc))

    return await submit(request, action, rerender=rerender, own_fields=("task_id",))
