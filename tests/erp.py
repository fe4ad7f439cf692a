"""The reference ERP simulator on a real loopback port, and Dossier's API on one for it to call.

Both are uvicorn servers in a thread of their own, so they answer whatever the test's event loop
is doing. The simulator can really go away and come back on the same port (`down()`/`up()`), so
the worker meets refused connections, not a polite 503. Registered in the root conftest's
`pytest_plugins`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.erp_simulator import Simulator, create_simulator
from api.main import create_app
from domain import customer, erp
from domain.access import SYSTEM
from domain.contract import Contract, ContractStatus
from domain.db import transaction
from domain.settings import Settings
from tests.conftest import wait_until

ERP_SECRET = "erp-shared-secret-for-tests"


class LoopbackServer:
    """uvicorn serving `app` on 127.0.0.1 in a thread; stop() and start() keep the port."""

    def __init__(self, app: FastAPI, *, lifespan: str = "off") -> None:
        self.app = app
        self.lifespan = lifespan
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, lifespan=self.lifespan, log_level="warning")
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True
        )
        self._thread.start()

    async def started(self) -> None:
        assert self._server is not None
        server = self._server

        async def up() -> bool:
            return server.started

        await wait_until(up)

    def stop(self) -> None:
        """Close the listening socket and every connection: callers get connection refused."""
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "server did not stop"


class ErpSim:
    """The simulator under test: its state is read directly, its switches over HTTP."""

    def __init__(self) -> None:
        self.app = create_simulator(dossier_url=None, secret=ERP_SECRET)
        self.server = LoopbackServer(self.app)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def state(self) -> Simulator:
        return self.app.state.sim

    async def down(self) -> None:
        self.server.stop()

    async def up(self) -> None:
        self.server.start()
        await self.server.started()

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            response = await http.request(method, path, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    async def switch(self, **switches: Any) -> Any:
        return await self.call("POST", "/_sim/switches", json=switches)

    async def send(self, number: str, what: str, **fields: Any) -> dict[str, Any]:
        """Make the simulator send an event to Dossier; what it sent and what Dossier said."""
        return await self.call("POST", f"/_sim/orders/{number}/{what}", json=fields)

    def bookings(self) -> list[dict[str, Any]]:
        return [
            {"key": b.key, "erp_order_id": b.erp_order_id, "number": b.order["number"],
             "requests": self.state.requests.get(b.key, 0)}
            for b in self.state.bookings.values()
        ]


@pytest.fixture
async def erp_sim() -> AsyncIterator[ErpSim]:
    """The reference ERP simulator on a free loopback port, signing with ERP_SECRET."""
    sim = ErpSim()
    await sim.up()
    yield sim
    if sim.server._thread is not None and sim.server._thread.is_alive():
        sim.server.stop()


def with_erp(settings: Settings, sim: ErpSim) -> Settings:
    """`settings` pointed at the simulator, sharing its secret."""
    return settings.model_copy(update={"erp_url": sim.url, "erp_secret": SecretStr(ERP_SECRET)})


@pytest.fixture
async def dossier_server(
    settings: Settings, temporal_client: Client
) -> AsyncIterator[LoopbackServer]:
    """Dossier's API on a loopback port, for the simulator to send events to. It has its own
    engine and Temporal connection (to the test's server), made in its own thread's loop."""
    target = temporal_client.service_client.config.target_host
    config = settings.model_copy(update={"temporal_address": target})
    server = LoopbackServer(create_app(config), lifespan="on")
    server.start()
    await server.started()
    yield server
    server.stop()


async def signed_contract(
    sessions: async_sessionmaker[AsyncSession],
    *,
    owner_id: int | None,
    amount: str = "10000.00",
    terms: list[tuple[date, str]] | None = None,
    signed_at: datetime | None = None,
) -> Contract:
    """A company customer with billing details, and its contract as the approval chain leaves
    it: signed, with its payment terms (回款计划)."""
    async with transaction(sessions) as session:
        owner = await customer.create(session, actor=SYSTEM, data=customer.CustomerCreate(
            kind=customer.Kind.company, name="上海云杉信息科技有限公司", owner_id=owner_id,
            credit_code="91350100M000100Y43", invoice_title="上海云杉信息科技有限公司",
            billing_address="上海市浦东新区世纪大道100号", billing_phone="021-58881234",
            bank_name="招商银行上海分行", bank_account="1219 0876 5432 101",
        ))
        contract = Contract(
            number=f"HT-{uuid.uuid4().hex[:8]}", title="年度订阅合同", customer_id=owner.id,
            owner_id=owner_id, status=ContractStatus.signed.value, amount=Decimal(amount),
            payment_terms=[{"due_on": d.isoformat(), "amount": a} for d, a in terms or []],
            signed_at=signed_at,
        )
        session.add(contract)
    return contract


def signed_request(
    event: dict[str, Any], secret: str, *, now: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """An event as the ERP sends it: the JSON body and its signature headers."""
    body = json.dumps(event, ensure_ascii=False).encode()
    stamp = time.time() if now is None else now
    return body, {"Content-Type": "application/json",
                  **erp.signed_headers(secret, body, now=stamp)}
