"""Signing in and out of the pages, and the language switch."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from api import i18n, tokens
from api.auth import sign_in
from api.pages.base import (
    CSRF_FIELD,
    HOME,
    LANG_COOKIE,
    LOGIN_COOKIE,
    YEAR,
    Page,
    csrf_ok,
    csrf_token,
    new_login_nonce,
    open_page,
    safe_next,
    view,
)
from domain.access import Source
from domain.db import transaction
from domain.errors import NotFound

router = APIRouter(include_in_schema=False)

LOGIN_NONCE_SECONDS = 2 * 3600


def _login_form(
    page: Page, *, next_path: str, nonce: str, username: str = "", error: str = "", status=200
) -> Response:
    response = page.render(
        "login.html",
        status=status,
        next_path=next_path,
        username=username,
        error=error,
        login_csrf=csrf_token(page.settings, nonce, "login"),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=LOGIN_NONCE_SECONDS,
        httponly=True,
        secure=page.settings.cookie_secure,
        samesite="lax",
    )
    return response


@router.get("/")
async def home() -> Response:
    return RedirectResponse(HOME, status_code=302)


@router.get("/login")
async def login_form(request: Request) -> Response:
    next_path = safe_next(request.query_params.get("next"))

    async def body(page: Page) -> Response:
        if page.actor is not None:
            return RedirectResponse(next_path, status_code=302)
        nonce = request.cookies.get(LOGIN_COOKIE) or new_login_nonce()
        return _login_form(page, next_path=next_path, nonce=nonce)

    return await view(request, body, signed_in=False)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form()
    next_path = safe_next(str(form.get("next") or ""))
    username = str(form.get("username") or "").strip()[:64]
    password = str(form.get("password") or "")[:256]
    nonce = request.cookies.get(LOGIN_COOKIE)
    async with transaction(request.app.state.sessions) as session:
        page = await open_page(request, session, signed_in=False)
        fresh = new_login_nonce()
        if not csrf_ok(page.settings, nonce, form.get(CSRF_FIELD), "login"):
            error = page.t("login.stale")
            return _login_form(
                page, next_path=next_path, nonce=fresh, username=username, error=error, status=403
            )
        row, issued = await sign_in(
            session, page.settings, username=username, password=password, source=Source.page
        )
        if row is None or issued is None:
            error = page.t("login.wrong")
            return _login_form(
                page, next_path=next_path, nonce=fresh, username=username, error=error, status=401
            )
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        tokens.COOKIE,
        issued,
        max_age=page.settings.token_ttl_minutes * 60,
        httponly=True,
        secure=page.settings.cookie_secure,
        samesite="lax",
    )
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    async with transaction(request.app.state.sessions) as session:
        page = await open_page(request, session, signed_in=False)
        token = request.cookies.get(tokens.COOKIE)
        if page.actor is not None and not csrf_ok(page.settings, token, form.get(CSRF_FIELD)):
            return page.render(
                "error.html", status=403, status_code=403, message=page.t("error.csrf")
            )
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(
        tokens.COOKIE, path="/", httponly=True, secure=page.settings.cookie_secure
    )
    return response


@router.get("/lang/{code}")
async def switch_language(request: Request, code: str) -> Response:
    lang = i18n.language(code)
    if lang is None:
        async with transaction(request.app.state.sessions) as session:
            page = await open_page(request, session, signed_in=False)
            return page.render(
                "error.html",
                status=404,
                status_code=404,
                message=page.t.error(NotFound("no such language").message),
            )
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=302)
    response.set_cookie(LANG_COOKIE, lang, max_age=YEAR, samesite="lax")
    return response
