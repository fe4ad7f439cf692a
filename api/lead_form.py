"""Web forms: admins define them under /api/lead-forms; anyone fills them in at /forms/<slug>.

The public side needs no sign-in and answers a plain HTML form post, a multipart post and JSON.
It guards itself with a honeypot field (a bot that fills it is told "thank you" and nothing is
kept, so it learns nothing) and a per-IP sliding-window rate limit per form. The answer never
carries the lead's id: a stranger must not learn record ids, nor whether they were already known.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import deque
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile
from temporalio.service import RPCError

from api import i18n
from api.deps import CurrentActor, RecordId, SessionDep, get_temporal
from api.errors import TemporalUnavailable, error_body
from api.lead import capture
from domain import behaviour, lead_form
from domain.access import Actor, Role, Scope, Source
from domain.db import transaction
from domain.errors import DomainError, NotFound
from domain.lead import Lead, LeadCreate
from domain.settings import Settings

router = APIRouter(tags=["lead forms"])

WINDOW_SECONDS = 60.0
FORM_CSP = (
    "default-src 'none'; style-src 'nonce-{nonce}'; img-src data:; form-action 'self'; "
    "base-uri 'none'"
)
"""No script at all; the one inline style block carries a nonce. Framing is allowed on purpose,
so a company can embed its form in its own site."""

templates = Environment(
    loader=PackageLoader("api", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

MESSAGES_ZH = {
    "required": "必填",
    "not a field of this form": "此表单没有这一项",
    "files are not accepted": "不接受上传文件",
    "give a phone number, an email or a WeChat ID to reach them": (
        "请至少填写手机号码、电子邮箱或微信号中的一项"
    ),
}


# --- admin -----------------------------------------------------------------------------------


@router.get("/api/lead-forms")
async def list_forms(actor: CurrentActor, session: SessionDep) -> list[lead_form.LeadFormRead]:
    rows = await lead_form.list_forms(session, actor=actor)
    return [lead_form.LeadFormRead.model_validate(r) for r in rows]


@router.post("/api/lead-forms", status_code=201)
async def create_form(
    data: lead_form.LeadFormCreate, actor: CurrentActor, session: SessionDep
) -> lead_form.LeadFormRead:
    """A new public form at /forms/<slug>; 409 when the slug is taken."""
    row = await lead_form.create(session, actor=actor, data=data)
    return lead_form.LeadFormRead.model_validate(row)


@router.get("/api/lead-forms/{form_id}")
async def get_form(
    form_id: RecordId, actor: CurrentActor, session: SessionDep
) -> lead_form.LeadFormRead:
    row = await lead_form.get(session, actor=actor, form_id=form_id)
    return lead_form.LeadFormRead.model_validate(row)


@router.patch("/api/lead-forms/{form_id}")
async def update_form(
    form_id: RecordId, data: lead_form.LeadFormUpdate, actor: CurrentActor, session: SessionDep
) -> lead_form.LeadFormRead:
    """Change a form; `active: false` takes it offline (its page then answers 404)."""
    row = await lead_form.update(session, actor=actor, form_id=form_id, data=data)
    return lead_form.LeadFormRead.model_validate(row)


# --- rate limit ------------------------------------------------------------------------------


class RateLimiter:
    """Sliding window of hits per key, in this process only.

    Enough for one API process; several processes each count on their own, so the effective
    limit is multiplied by their number (a shared store would be needed to be exact).
    """

    def __init__(
        self,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self.hits: dict[tuple[int, str], deque[float]] = {}

    def hit(self, key: tuple[int, str], limit: int) -> int | None:
        """Count a hit and return None, or refuse it: the seconds until one is allowed again."""
        now = self.clock()
        recent = self.hits.setdefault(key, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if len(recent) >= limit:
            return max(1, math.ceil(recent[0] + self.window - now))
        recent.append(now)
        if len(self.hits) > self.max_keys:
            self._sweep(now)
        return None

    def _sweep(self, now: float) -> None:
        """Forget keys without a hit in the window, so memory stays bounded."""
        for key in [
            k for k, hits in self.hits.items() if not hits or hits[-1] <= now - self.window
        ]:
            del self.hits[key]


def _limiter(request: Request) -> RateLimiter:
    """One limiter per app (tests build many apps in one process)."""
    limiter = getattr(request.app.state, "form_limiter", None)
    if limiter is None:
        limiter = request.app.state.form_limiter = RateLimiter()
    return limiter


class RateLimited(DomainError):
    status = 429

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many submissions from your address; try again in {retry_after} s",
            field=None,
        )
        self.retry_after = retry_after


# --- the public form -------------------------------------------------------------------------


def form_actor(slug: str) -> Actor:
    """Who a public form acts as: may only capture leads, and says which form in the audit."""
    return Actor(
        user_id=None,
        name=f"form:{slug}",
        role=Role.admin,
        source=Source.form,
        scopes=frozenset({Scope.leads_write}),
    )


def _wants_json(request: Request) -> bool:
    if _is_json(request):
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _zh(message: str) -> str:
    return MESSAGES_ZH.get(message) or i18n.error(message, "zh-CN")


def _page(
    name: str, *, status: int = 200, headers: dict[str, str] | None = None, **context: Any
) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    html = templates.get_template(f"forms/{name}").render(nonce=nonce, **context)
    response = HTMLResponse(html, status_code=status, headers=headers)
    response.headers["content-security-policy"] = FORM_CSP.format(nonce=nonce)
    response.headers["cache-control"] = "no-store"
    response.headers["referrer-policy"] = "strict-origin-when-cross-origin"
    response.headers["x-content-type-options"] = "nosniff"
    return response


def _cors(response: Response) -> Response:
    """JSON posts may come from the company's own site in a browser: let it read the answer.

    Safe with `*`: no cookies are read here and the answer holds no record data.
    """
    response.headers["access-control-allow-origin"] = "*"
    return response


def _notice(
    request: Request,
    status: int,
    title: str,
    message: str,
    *,
    english: str,
    field: str | None = None,
    kind: str,
    headers: dict[str, str] | None = None,
) -> Response:
    """A refusal: `english` for machines (JSON), title and message on a page for people."""
    if _wants_json(request):
        response = JSONResponse(
            error_body(english, field=field, kind=kind), status_code=status, headers=headers
        )
        return _cors(response)
    return _page("thanks.html", status=status, headers=headers, title=title, message=message)


def _not_found(request: Request) -> Response:
    return _notice(
        request,
        404,
        "表单不存在 · Form not found",
        "这个表单不存在或已停用。This form does not exist or is no longer open.",
        english="no such form",
        field="slug",
        kind="notfound",
    )


async def _values(request: Request, form: lead_form.PublicForm) -> tuple[dict[str, Any], bool]:
    """The posted names and values, and whether they came as JSON (strict about names)."""
    if _is_json(request):
        try:
            body = await request.json()
        except ValueError:
            raise lead_form.FormInvalid([("body", "must be a JSON object")]) from None
        if not isinstance(body, dict):
            raise lead_form.FormInvalid([("body", "must be a JSON object")])
        return body, True
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind not in ("", "application/x-www-form-urlencoded", "multipart/form-data"):
        raise UnsupportedBody()
    posted = await request.form()
    multi = {f.name for f in form.fields if f.input == "multiselect"}
    values: dict[str, Any] = {}
    problems = []
    for name in set(posted.keys()):
        items = posted.getlist(name)
        if any(isinstance(item, UploadFile) for item in items):
            if name in form.names:
                problems.append((name, "files are not accepted"))
            continue
        values[name] = list(items) if name in multi else items[-1]
    if problems:
        raise lead_form.FormInvalid(sorted(problems))
    return values, False


class UnsupportedBody(DomainError):
    status = 415

    def __init__(self) -> None:
        super().__init__(
            "send application/x-www-form-urlencoded, multipart/form-data or application/json",
            field="body",
        )


def _valid_slug(slug: str) -> bool:
    return 2 <= len(slug) <= 60 and all(c.isascii() and (c.isalnum() or c == "-") for c in slug)


@router.get("/forms/{slug}", response_class=HTMLResponse, include_in_schema=False)
async def show_form(request: Request, slug: str) -> Response:
    """The form as a plain page; `?visitor_id=` fills the hidden visitor field, if it has one."""
    if not _valid_slug(slug):
        return _not_found(request)
    async with transaction(request.app.state.sessions) as session:
        try:
            form = await lead_form.public(session, slug=slug)
        except NotFound:
            return _not_found(request)
    visitor = request.query_params.get("visitor_id", "")[:100]
    values = {"visitor_id": visitor} if visitor and "visitor_id" in form.names else {}
    return _page("form.html", form=form, values=values, errors={}, general=[])


@router.options("/forms/{slug}", include_in_schema=False)
async def preflight(slug: str) -> Response:
    """CORS preflight for JSON posts from a browser on another site."""
    response = Response(status_code=204)
    response.headers["access-control-allow-methods"] = "POST, OPTIONS"
    response.headers["access-control-allow-headers"] = "content-type"
    response.headers["access-control-max-age"] = "86400"
    return _cors(response)


_ANY_OBJECT = {"schema": {"type": "object", "additionalProperties": True}}


@router.post(
    "/forms/{slug}",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "description": "The form's fields by name; custom fields as `custom.<key>`.",
            "content": {
                "application/x-www-form-urlencoded": _ANY_OBJECT,
                "multipart/form-data": _ANY_OBJECT,
                "application/json": _ANY_OBJECT,
            },
        }
    },
)
async def submit_form(request: Request, slug: str) -> Response:
    """Create a lead from a public form (urlencoded, multipart or JSON).

    Answers 201 `{"ok": true, "message": <thank-you>}` to JSON and a thank-you page (200) to a
    browser — the same for a new lead, a repeated submission and a bot caught by the honeypot.
    422 lists every problem by field name; 404 for an unknown or inactive form; 429 with
    Retry-After when one address sends more than the form's limit per minute.
    """
    if not _valid_slug(slug):
        return _not_found(request)
    settings: Settings = request.app.state.settings
    form: lead_form.PublicForm | None = None
    values: dict[str, Any] = {}
    try:
        async with transaction(request.app.state.sessions) as session:
            form = await lead_form.public(session, slug=slug)
            host = request.client.host if request.client else "unknown"
            wait = _limiter(request).hit((form.id, host), form.settings.rate_limit)
            if wait is not None:
                raise RateLimited(wait)
            values, strict = await _values(request, form)
            submission = lead_form.read_submission(
                form, values, strict=strict, tz=ZoneInfo(settings.timezone)
            )
            if not submission.bot:
                assert submission.lead is not None
                await _capture(request, session, settings, form, submission.lead)
    except NotFound:
        return _not_found(request)
    except RateLimited as exc:
        return _notice(
            request,
            429,
            "提交过于频繁 · Too many submissions",
            f"请 {exc.retry_after} 秒后再试。Please try again in {exc.retry_after} s.",
            english=exc.message,
            kind="rate_limited",
            headers={"retry-after": str(exc.retry_after)},
        )
    except (TemporalUnavailable, RPCError):
        return _notice(
            request,
            503,
            "暂时无法提交 · Please try again",
            "服务暂时不可用，您的信息没有保存，请稍后重试。"
            "The service is unavailable; nothing was saved, please try again.",
            english="the service is unavailable, nothing was saved; try again",
            kind="unavailable",
        )
    except DomainError as exc:
        assert form is not None
        return _problems(request, form, values, exc)
    assert form is not None
    if _wants_json(request):
        return _cors(JSONResponse({"ok": True, "message": form.thank_you}, status_code=201))
    return _page("thanks.html", title=form.name, message=form.thank_you)


async def _capture(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    form: lead_form.PublicForm,
    data: LeadCreate,
) -> None:
    """Intake and the lead's workflow, then the submission as a behaviour event (it scores)."""
    temporal = await get_temporal(request)
    result = await capture(
        session, temporal, settings, actor=form_actor(form.slug), data=data, form_id=form.id
    )
    row = await session.get(Lead, result.lead.id)
    if row is not None:
        await behaviour.form_submitted(
            session, lead=row, form_slug=form.slug, visitor_id=data.visitor_id
        )


def _problems(
    request: Request, form: lead_form.PublicForm, values: dict[str, Any], exc: DomainError
) -> Response:
    """422 naming every bad field: JSON for machines, the form again for people."""
    found = (
        exc.problems
        if isinstance(exc, lead_form.FormInvalid)
        else [(exc.field or "body", exc.message)]
    )
    if _wants_json(request):
        kind = "invalid" if exc.status == 422 else type(exc).__name__.lower()
        detail = [{"loc": name.split("."), "msg": message, "type": kind} for name, message in found]
        return _cors(JSONResponse({"detail": detail}, status_code=exc.status))
    errors: dict[str, str] = {}
    general: list[str] = []
    for name, message in found:
        if name in form.names and name not in errors:
            errors[name] = _zh(message)
        else:
            general.append(_zh(message))
    shown = {k: v for k, v in values.items() if k in form.names and not isinstance(v, UploadFile)}
    return _page(
        "form.html", status=exc.status, form=form, values=shown, errors=errors, general=general
    )
