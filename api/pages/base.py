"""What every page shares: the signed-in actor, language, CSRF, templates, errors and flashes.

Each request runs in one transaction that commits *before* the response leaves, so a
redirect-after-post never races its own write. A failed POST rolls back first and only then
renders the form again with the problems next to their fields.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

import phonenumbers
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData
from temporalio.service import RPCError

from api import deps, i18n, tokens
from api.errors import TemporalUnavailable
from domain.access import Actor, Role, Source
from domain.db import transaction, utcnow
from domain.errors import DomainError, Forbidden, Invalid, NotFound
from domain.schema import MAX_ID
from domain.settings import Settings
from domain.user import User

HOME = "/customers"
LANG_COOKIE = "lang"
FLASH_COOKIE = "dossier_flash"
LOGIN_COOKIE = "dossier_login"
"""A random nonce set by the sign-in form, so even the sign-in POST carries a CSRF token."""
CSRF_FIELD = "csrf_token"
YEAR = 365 * 24 * 3600
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; frame-ancestors 'none'"
)
"""The pages use no script and no inline style, so they can forbid both."""

templates = Environment(
    loader=PackageLoader("api", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


class SignInRequired(Exception):
    """No valid session cookie: the page answers with a redirect to the sign-in form."""


class CsrfRefused(Forbidden):
    def __init__(self) -> None:
        super().__init__("the form is stale or came from another site; reload and try again")


# --- pure helpers --------------------------------------------------------------------------


def safe_next(raw: str | None, default: str = HOME) -> str:
    """`raw` if it is a path on this site, else `default`: never an absolute or protocol URL.

    Browsers read `//host`, `/\\host` and paths with tabs or newlines in them (which they
    strip) as another site, so any backslash, control character or space is refused.
    """
    if not raw or len(raw) > 2000 or not raw.startswith("/") or raw.startswith("//"):
        return default
    if any(ch == "\\" or ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in raw):
        return default
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or parts.path.startswith(("/login", "/logout")):
        return default
    return raw


def record_id(raw: str, field: str) -> int:
    """A record id from a path, or the 404 a missing record gives."""
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        raise NotFound("no such record", field=field)
    return int(raw)


def csrf_token(settings: Settings, secret: str, purpose: str = "session") -> str:
    """HMAC of the session token (or the sign-in nonce): nothing to store, bound to the session."""
    message = f"dossier-csrf|{purpose}|{secret}".encode()
    return hmac.new(settings.signing_key().encode(), message, hashlib.sha256).hexdigest()


def csrf_ok(settings: Settings, secret: str | None, sent: Any, purpose: str = "session") -> bool:
    if not secret or not isinstance(sent, str) or not sent:
        return False
    return hmac.compare_digest(csrf_token(settings, secret, purpose), sent)


def money(amount: Decimal | int | float | None, currency: str = "CNY") -> str:
    """¥1,234.50 for CNY; other currencies by code."""
    if amount is None:
        return "—"
    value = Decimal(amount).quantize(Decimal("0.01"))
    sign = "-" if value < 0 else ""
    text = f"{abs(value):,.2f}"
    return f"{sign}¥{text}" if currency == "CNY" else f"{sign}{currency} {text}"


def split_tags(raw: str | None) -> list[str]:
    """Tags as people type them: separated by commas (either width), 、 or semicolons."""
    parts = re.split(r"[,，、;；\n]", raw or "")
    seen: list[str] = []
    for part in parts:
        tag = part.strip()
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def span(seconds: float, t: i18n.Translator) -> str:
    """A rounded duration in words: minutes under an hour, hours under two days, then days."""
    seconds = abs(seconds)
    minutes = max(1, round(seconds / 60))
    if minutes < 60:
        return t("span.minutes", n=minutes)
    hours = round(seconds / 3600)
    if hours < 48:
        return t("span.hours", n=max(1, hours))
    return t("span.days", n=round(seconds / 86400))


def due_text(due_at: datetime | None, now: datetime, t: i18n.Translator) -> str:
    """还剩 2 小时 / 已逾期 3 小时, relative to now."""
    if due_at is None:
        return t("due.none")
    delta = (due_at - now).total_seconds()
    key = "due.left" if delta >= 0 else "due.overdue"
    return t(key, span=span(delta, t))


# --- the page ------------------------------------------------------------------------------


@dataclass
class Problem:
    field: str | None
    message: str


class Problems:
    """Form problems by field, in the user's language, for the form and its summary."""

    def __init__(
        self,
        items: Iterable[Problem] = (),
        labels: Mapping[str, str] | None = None,
        colon: str = "：",
    ) -> None:
        self.items = list(items)
        self.labels = dict(labels or {})
        self.colon = colon

    def __bool__(self) -> bool:
        return bool(self.items)

    def get(self, field: str) -> str:
        return "；".join(p.message for p in self.items if p.field == field)

    def summary(self) -> list[str]:
        out = []
        for p in self.items:
            label = self.labels.get(p.field or "", p.field or "")
            out.append(f"{label}{self.colon}{p.message}" if label else p.message)
        return out


@dataclass
class Page:
    request: Request
    session: AsyncSession
    settings: Settings
    actor: Actor | None
    user: User | None
    lang: str

    @property
    def t(self) -> i18n.Translator:
        return i18n.Translator(self.lang)

    @property
    def me(self) -> Actor:
        if self.actor is None:
            raise SignInRequired
        return self.actor

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @property
    def is_admin(self) -> bool:
        return self.actor is not None and self.actor.is_admin

    def require_admin(self) -> None:
        self.me.require_role(Role.admin)

    def csrf(self) -> str:
        session_token = self.request.cookies.get(tokens.COOKIE)
        return csrf_token(self.settings, session_token) if session_token else ""

    def local(self, value: datetime | None) -> datetime | None:
        return None if value is None else value.astimezone(self.zone)

    def when(self, value: datetime | str | None) -> str:
        """A moment in the configured time zone, like 2026-11-23 09:30."""
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError:
                return value
        if value is None:
            return ""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M")

    def phone(self, value: str | None) -> str:
        """A stored E.164 number as people write it at home: +8613800138000 → 138 0013 8000."""
        if not value:
            return ""
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            return value
        region = self.settings.default_region
        if phonenumbers.region_code_for_number(number) == region:
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)

    def day(self, value: date | None) -> str:
        return value.isoformat() if value else ""

    def parse_local(self, raw: str) -> datetime | None:
        """A `datetime-local` input (2026-11-23T09:30), read in the configured time zone."""
        try:
            value = datetime.fromisoformat(raw.strip())
        except ValueError:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value

    def problems(self, exc: BaseException, labels: Mapping[str, str] | None = None) -> Problems:
        """The failure as problems by field, translated where the catalog knows the message."""
        t = self.t
        names = {k: v for k, v in (labels or {}).items()}
        items: list[Problem] = []
        if isinstance(exc, ValidationError):
            for err in exc.errors(include_url=False):
                loc = [str(part) for part in err["loc"] if not isinstance(part, int)]
                field = ".".join(loc[:2]) if loc[:1] == ["custom"] else (loc[0] if loc else None)
                key = i18n.PYDANTIC_PREFIX + err["type"]
                ctx = {k: v for k, v in (err.get("ctx") or {}).items() if k != "error"}
                message = t(key, **ctx) if i18n.has(key, self.lang) else t.error(_plain(err["msg"]))
                items.append(Problem(field, message))
        elif isinstance(exc, DomainError):
            items.append(Problem(exc.field, t.error(exc.message)))
        elif isinstance(exc, TemporalUnavailable | RPCError):
            items.append(Problem(None, t("error.workflow_unavailable")))
        else:
            items.append(Problem(None, str(exc)))
        for problem in items:
            if problem.field and problem.field not in names:
                names[problem.field] = field_label(problem.field, t)
        return Problems(items, names, t("common.colon"))

    def render(self, name: str, *, status: int = 200, **context: Any) -> HTMLResponse:
        flash = self.request.cookies.get(FLASH_COOKIE)
        flash_text = self.t(f"flash.{flash}") if flash and i18n.has(f"flash.{flash}") else ""
        path = self.request.url.path
        here = path + (f"?{self.request.url.query}" if self.request.url.query else "")
        html = templates.get_template(name).render(
            page=self,
            t=self.t,
            lang=self.lang,
            me=self.actor,
            user=self.user,
            csrf=self.csrf(),
            flash=flash_text,
            here=here,
            here_quoted=quote(here, safe=""),
            now=utcnow(),
            money=money,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["cache-control"] = "no-store"
        response.headers["content-security-policy"] = CSP
        response.headers["x-frame-options"] = "DENY"
        response.headers["referrer-policy"] = "same-origin"
        if flash:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response


def status_of(exc: BaseException) -> int:
    """The HTTP status a failed form answers with."""
    if isinstance(exc, DomainError):
        return exc.status
    if isinstance(exc, TemporalUnavailable | RPCError):
        return 503
    return 422


def _plain(message: str) -> str:
    """Pydantic prefixes custom messages with 'Value error, '; the catalog keys omit it."""
    return message.removeprefix("Value error, ")


def field_label(field: str, t: i18n.Translator) -> str:
    key = f"field.{field}"
    return t(key) if i18n.has(key, t.lang) else field


def pick_language(request: Request, actor: Actor | None, settings: Settings) -> str:
    """The `lang` cookie, else the user's locale, else the configured default (zh-CN)."""
    return (
        i18n.language(request.cookies.get(LANG_COOKIE))
        or (i18n.language(actor.locale) if actor else None)
        or i18n.language(settings.default_locale)
        or i18n.DEFAULT
    )


async def open_page(request: Request, session: AsyncSession, *, signed_in: bool = True) -> Page:
    settings: Settings = request.app.state.settings
    actor = await deps.optional_actor(request, session, None)
    if actor is not None and (actor.source is not Source.page or actor.user_id is None):
        actor = None  # an API key or bearer token is for the API, not the pages
    if actor is None and signed_in:
        raise SignInRequired
    row = await session.get(User, actor.user_id) if actor and actor.user_id else None
    return Page(request, session, settings, actor, row, pick_language(request, actor, settings))


def _sessions(request: Request) -> Any:
    return request.app.state.sessions


def to_login(request: Request, next_path: str | None = None) -> RedirectResponse:
    if next_path is None:
        query = request.url.query
        next_path = request.url.path + (f"?{query}" if query else "")
    target = safe_next(next_path)
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


def redirect(url: str, *, flash: str | None = None) -> RedirectResponse:
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(FLASH_COOKIE, flash, max_age=120, httponly=True, samesite="lax")
    return response


def _referer_path(request: Request) -> str | None:
    referer = request.headers.get("referer")
    if not referer:
        return None
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.url.netloc:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def error_page(request: Request, exc: DomainError) -> HTMLResponse:
    """404, 403 … as a page in the user's language, rendered after the failed work rolled back."""
    async with transaction(_sessions(request)) as session:
        page = await open_page(request, session, signed_in=False)
        return page.render(
            "error.html",
            status=exc.status,
            status_code=exc.status,
            message=page.t.error(exc.message),
        )


async def view(
    request: Request, body: Callable[[Page], Awaitable[Response]], *, signed_in: bool = True
) -> Response:
    """Serve a GET page: one transaction, sign-in required unless told otherwise."""
    try:
        async with transaction(_sessions(request)) as session:
            page = await open_page(request, session, signed_in=signed_in)
            return await body(page)
    except SignInRequired:
        return to_login(request)
    except DomainError as exc:
        return await error_page(request, exc)


Rerender = Callable[[Page, FormData, BaseException], Awaitable[Response]]


def _is_page_error(exc: BaseException, own_fields: tuple[str, ...]) -> bool:
    """Failures that are about the page itself (not a field of the form): an error page."""
    if isinstance(exc, NotFound):
        return exc.field is None or exc.field in own_fields
    return isinstance(exc, Forbidden) and exc.field is None


async def submit(
    request: Request,
    action: Callable[[Page, FormData], Awaitable[Response]],
    *,
    rerender: Rerender | None = None,
    own_fields: tuple[str, ...] = (),
) -> Response:
    """Handle a POST: signed in, CSRF token checked, work committed, then redirect.

    On a problem the transaction rolls back (no half-written record) and `rerender` shows the
    form again with it, in a fresh transaction.
    """
    form = await request.form()
    try:
        async with transaction(_sessions(request)) as session:
            page = await open_page(request, session)
            session_token = request.cookies.get(tokens.COOKIE)
            if not csrf_ok(page.settings, session_token, form.get(CSRF_FIELD)):
                raise CsrfRefused
            return await action(page, form)
    except SignInRequired:
        return to_login(request, _referer_path(request) or HOME)
    except CsrfRefused as exc:
        return await error_page(request, exc)
    except (DomainError, ValidationError, TemporalUnavailable, RPCError) as exc:
        if rerender is None or _is_page_error(exc, own_fields):
            if not isinstance(exc, DomainError):
                exc = Invalid(str(exc).splitlines()[0])
            return await error_page(request, exc)
        async with transaction(_sessions(request)) as session:
            page = await open_page(request, session)
            return await rerender(page, form, exc)


def new_login_nonce() -> str:
    return secrets.token_urlsafe(24)
