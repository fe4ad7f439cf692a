"""The ERP channel: signed HTTP requests with an idempotency key, and the customer push.

A request the ERP may not have seen (no connection, a timeout, a 5xx) raises a retryable error:
Temporal tries again later under the same idempotency key, so the ERP books at most once. A 4xx
is the ERP's considered refusal: it raises the non-retryable `ErpRefused` with the ERP's words.
"""

from __future__ import annotations

import time
from typing import TypeVar

import httpx
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain import erp, timeline
from domain.db import transaction
from domain.order import service as orders
from domain.settings import Settings

REFUSED = "ErpRefused"
UNAVAILABLE = "ErpUnavailable"

Answer = TypeVar("Answer", bound=BaseModel)


WAIT_FOR_COMMIT_ATTEMPTS = 8
"""Attempts (about two minutes of backoff) a push waits for the change it was started for to be
committed; after that the change was rolled back or superseded, and the stored state is sent."""


class CustomerPush(BaseModel):
    """Push a customer's billing details and contacts, as stored when the push runs."""

    customer_id: int
    expected: str | None = None
    """Fingerprint of the payload as the change left it (`domain.erp.fingerprint`): the API
    starts the push before it commits, so the push waits until the stored state matches."""


def _reason(response: httpx.Response) -> str:
    """The ERP's own words for a refusal: `message` or `detail` of a JSON body, else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


class ErpClient:
    """One signed call to the ERP per method call; failures classified for Temporal's retry."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def configured(self) -> bool:
        return bool(self.settings.erp_url)

    async def send(
        self, method: str, path: str, payload: BaseModel, *, key: str, answer: type[Answer]
    ) -> Answer:
        assert self.settings.erp_url is not None
        body = payload.model_dump_json().encode()
        headers = {
            "Content-Type": "application/json",
            erp.IDEMPOTENCY_HEADER: key,
            **erp.signed_headers(self.settings.erp_signing_secret(), body, now=time.time()),
        }
        url = self.settings.erp_url.rstrip("/") + path
        try:
            async with httpx.AsyncClient(timeout=self.settings.erp_timeout) as client:
                response = await client.request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ApplicationError(
                f"ERP unreachable ({type(exc).__name__}: {exc})", type=UNAVAILABLE
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise ApplicationError(
                f"ERP answered {response.status_code}: {_reason(response)}", type=UNAVAILABLE
            )
        if response.status_code >= 400:
            raise ApplicationError(
                _reason(response),
                {"status": response.status_code, "key": key},
                type=REFUSED,
                non_retryable=True,
            )
        try:
            return answer.model_validate_json(response.content)
        except ValidationError as exc:
            # A 2xx we cannot read: the ERP may have done it, so retry under the same key.
            raise ApplicationError(
                f"ERP answer unreadable: {exc.errors(include_url=False)[0]['msg']}",
                type=UNAVAILABLE,
            ) from None


class Pushed(BaseModel):
    """The ERP's acknowledgement of a customer push."""

    code: str


class ErpActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.erp = ErpClient(settings)

    @activity.defn(name="erp_push_customer")
    async def push_customer(self, push: CustomerPush) -> bool:
        """PUT the customer as stored now; False when no ERP is configured.

        Read at push time, not at change time: pushes of one customer run one after another in
        its `erp-customer-<id>` workflow, so the last one carries the newest state.
        """
        if not self.erp.configured:
            return False
        info = activity.info()
        async with self.sessions() as session:
            payload = await orders.erp_customer(session, customer_id=push.customer_id)
        if (
            push.expected is not None
            and erp.fingerprint(payload) != push.expected
            and info.attempt < WAIT_FOR_COMMIT_ATTEMPTS
        ):
            raise ApplicationError("the change is not committed yet", type="NotYetCommitted")
        await self.erp.send(
            "PUT",
            f"/api/customers/{payload.code}",
            payload,
            key=f"{info.workflow_id}/{info.workflow_run_id}/{info.activity_id}",
            answer=Pushed,
        )
        async with transaction(self.sessions) as session:
            # On the timeline, so people see when the ERP got their changes.
            timeline.add(
                session,
                customer_id=push.customer_id,
                kind="customer.erp_synced",
                actor=orders.ERP,
                summary=f"ERP {payload.code}",
                ref=("customer", push.customer_id),
            )
        return True
