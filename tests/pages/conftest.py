"""Page fixtures: one headless Chromium per session, the app served by uvicorn on loopback.

Debian's /usr/bin/chromium is driven through the Playwright package (never a browser
download). Without it the browser tests skip with the reason, except under CI=true.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.is_file()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        reason = f"{CHROMIUM} is missing: apt-get install chromium fonts-noto-cjk"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        await launched.close()


@pytest.fixture
async def live(app: FastAPI) -> AsyncIterator[str]:
    """The app on a free loopback port, served from this test loop; its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    deadline = asyncio.get_running_loop().time() + 10
    while not server.started:
        if task.done() or asyncio.get_running_loop().time() > deadline:
            pytest.fail("uvicorn did not start")
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task
    sock.close()


@pytest.fixture
async def page(browser: Browser, live: str) -> AsyncIterator[Page]:
    """A fresh browser context (no cookies) on the live app."""
    context = await browser.new_context(
        base_url=live,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport={"width": 1280, "height": 900},
    )
    context.set_default_timeout(10_000)
    tab = await context.new_page()
    yield tab
    await context.close()


SignIn = Callable[[Page, str], Awaitable[None]]


@pytest.fixture
def sign_in() -> SignIn:
    async def go(tab: Page, username: str) -> None:
        await tab.goto("/login")
        await tab.get_by_label("用户名").fill(username)
        await tab.get_by_label("密码").fill(PASSWORD)
        await tab.get_by_role("button", name="登录").click()
        await tab.wait_for_url(re.compile(r"/customers"))

    return go


@pytest.fixture
async def web(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A cookie-keeping client for page flows that need no browser (CSRF, redirects)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dossier.test") as c:
        yield c


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def web_sign_in(web: httpx.AsyncClient, username: str) -> str:
    """Sign in through the page form; the CSRF token of the new session."""
    form = await web.get("/login")
    token = CSRF.search(form.text)
    assert token, form.text
    response = await web.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 303, response.text
    listing = await web.get("/customers")
    assert listing.status_code == 200
    found = CSRF.search(listing.text)
    assert found
    return found.group(1)
