"""POST /api/erp/events: signed events reach the order workflow; anything else changes nothing."""

from __future__ import annotations

import logging
import time
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.worker import Worker

from domain import erp
from domain.audit import AuditLog
from domain.db import transaction
from domain.order.models import ErpEventRecord, Order, Payment
from domain.order.rules import OrderPolicy
from domain.order.schemas import OrderRead
from domain.order.service import open_from_contract
from domain.settings import Settings
from domain.timeline import TimelineEvent
from tests.conftest import MakeUser, wait_until
from tests.erp import signed_contract, signed_request


async def _order(sessions: async_sessionmaker[AsyncSession], make_user: MakeUser) -> Order:
    rep = await make_user("rep1")
    contract = await signed_contract(sessions, owner_id=rep.id, amount="10000.00")
    async with transaction(sessions) as session:
        return await open_from_contract(
            session, contract_id=contract.id, policy=OrderPolicy(),
            today=date.today(), signed_on=date.today(),
        )


def _shipped(order: Order) -> dict[str, Any]:
    return {"type": "order.shipped", "event_id": "evt-ship-1", "order_number": order.number,
            "occurred_at": "2026-03-02T10:00:00+08:00", "carrier": "顺丰速运",
            "tracking_no": "SF1234567890", "shipped_at": "2026-03-02T09:30:00+08:00"}


def _paid(order: Order, amount: str) -> dict[str, Any]:
    return {"type": "payment.received", "event_id": "evt-pay-1", "order_number": order.number,
            "occurred_at": "2026-03-05T10:00:00+08:00", "amount": amount,
            "paid_on": "2026-03-05", "reference": "BANK-778"}


async def _row(sessions: async_sessionmaker[AsyncSession], order_id: int) -> Order:
    async with sessions() as session:
        row = await session.get(Order, order_id)
        assert row is not None
        return row


async def _everything(sessions: async_sessionmaker[AsyncSession], order_id: int) -> dict:
    """What an event could change: the order, and every table it would write to."""
    async with sessions() as session:
        counts = {
            table.__name__: await session.scalar(select(func.count()).select_from(table))
            for table in (ErpEventRecord, Payment, TimelineEvent, AuditLog)
        }
    order = OrderRead.model_validate(await _row(sessions, order_id)).model_dump()
    return {"order": order, **counts}


async def test_a_signed_event_reaches_the_order_workflow(
    client: httpx.AsyncClient, worker: Worker, sessions: async_sessionmaker[AsyncSession],
    settings: Settings, make_user: MakeUser,
) -> None:
    order = await _order(sessions, make_user)
    body, headers = signed_request(_shipped(order), settings.erp_signing_secret())

    answer = await client.post("/api/erp/events", content=body, headers=headers)

    assert answer.status_code == 202, answer.text
    assert answer.json() == {"event_id": "evt-ship-1", "order_id": order.id, "accepted": True}

    async def shipped() -> bool:
        return (await _row(sessions, order.id)).status == "shipped"

    await wait_until(shipped)
    row = await _row(sessions, order.id)
    assert (row.carrier, row.tracking_no) == ("顺丰速运", "SF1234567890")
    async with sessions() as session:
        kinds = list(await session.scalars(
            select(TimelineEvent.kind).where(TimelineEvent.customer_id == order.customer_id)
        ))
        recorded = await session.scalar(select(ErpEventRecord))
    assert "order.shipped" in kinds
    assert recorded is not None and recorded.event_id == "evt-ship-1"
    assert recorded.kind == "order.shipped" and recorded.order_number == order.number


async def test_a_replayed_event_is_refused_and_pays_once(
    client: httpx.AsyncClient, worker: Worker, sessions: async_sessionmaker[AsyncSession],
    settings: Settings, make_user: MakeUser, caplog: pytest.LogCaptureFixture,
) -> None:
    order = await _order(sessions, make_user)
    body, headers = signed_request(_paid(order, "2500.00"), settings.erp_signing_secret())
    first = await client.post("/api/erp/events", content=body, headers=headers)
    assert first.status_code == 202, first.text

    async def booked_payment() -> bool:
        return (await _row(sessions, order.id)).paid_amount == Decimal("2500.00")

    await wait_until(booked_payment)
    caplog.set_level(logging.WARNING, logger="dossier.erp")
    before = await _everything(sessions, order.id)

    again = await client.post("/api/erp/events", content=body, headers=headers)

    assert again.status_code == 409, again.text
    assert again.json()["detail"][0]["loc"] == ["event_id"]
    assert "replayed event id" in caplog.text
    assert await _everything(sessions, order.id) == before
    assert before["Payment"] == 1


FORGED = "sha256=" + "0" * 64


@pytest.mark.parametrize(
    ("case", "status", "field", "logged"),
    [
        ("forged signature", 401, "X-Dossier-Signature", "does not match"),
        ("signed with another secret", 401, "X-Dossier-Signature", "does not match"),
        ("stale timestamp", 401, "X-Dossier-Signature", "more than 5 minutes off"),
        ("no signature", 401, "X-Dossier-Signature", "missing X-Dossier-Signature"),
        ("body changed after signing", 401, "X-Dossier-Signature", "does not match"),
        ("amount missing", 422, "amount", "malformed body"),
        ("not JSON", 422, "body", "malformed body"),
        ("unknown type", 422, "type", "malformed body"),
        ("unknown order", 404, "order_number", "unknown order"),
    ],
)
async def test_refused_events_are_logged_and_change_nothing(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings,
    make_user: MakeUser, caplog: pytest.LogCaptureFixture,
    case: str, status: int, field: str, logged: str,
) -> None:
    order = await _order(sessions, make_user)
    secret = settings.erp_signing_secret()
    event = _paid(order, "100.00")
    body, headers = signed_request(event, secret)
    if case == "forged signature":
        headers["X-Dossier-Signature"] = FORGED
    elif case == "signed with another secret":
        body, headers = signed_request(event, "not-the-shared-secret")
    elif case == "stale timestamp":
        body, headers = signed_request(event, secret, now=time.time() - 6 * 60)
    elif case == "no signature":
        del headers["X-Dossier-Signature"]
    elif case == "body changed after signing":
        body = body.replace(b'"100.00"', b'"100000.00"')
    elif case == "amount missing":
        del event["amount"]
        body, headers = signed_request(event, secret)
    elif case == "not JSON":
        body = b"{not json"
        headers.update(erp.signed_headers(secret, body, now=time.time()))
    elif case == "unknown type":
        body, headers = signed_request({**event, "type": "order.cancelled"}, secret)
    elif case == "unknown order":
        body, headers = signed_request({**event, "order_number": "SO-2099-999999"}, secret)
    caplog.set_level(logging.WARNING, logger="dossier.erp")
    before = await _everything(sessions, order.id)

    answer = await client.post("/api/erp/events", content=body, headers=headers)

    assert answer.status_code == status, answer.text
    assert answer.json()["detail"][0]["loc"] == field.split(".")
    assert any(r.name == "dossier.erp" and logged in r.getMessage() for r in caplog.records)
    assert await _everything(sessions, order.id) == before

