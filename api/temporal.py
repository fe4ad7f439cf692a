"""The API's single Temporal client, connected on first use so the API starts without Temporal."""

from __future__ import annotations

import asyncio

from temporalio.client import Client

from api.errors import TemporalUnavailable
from domain.settings import Settings
from workflows.client import connect


class TemporalGateway:
    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        if self._client is None:
            async with self._lock:
                if self._client is None:
                    try:
                        self._client = await asyncio.wait_for(connect(self._settings), 5)
                    except (TimeoutError, RuntimeError, OSError) as exc:
                        raise TemporalUnavailable(str(exc)) from exc
        return self._client

    async def reachable(self) -> bool:
        try:
            client = await self.client()
            await asyncio.wait_for(client.service_client.check_health(), 3)
        except Exception:
            return False
        return True
