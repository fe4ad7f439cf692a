"""One transaction per activity, with domain refusals turned into non-retryable failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError

from domain.db import transaction
from domain.errors import DomainError


@asynccontextmanager
async def unit(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A transaction whose domain refusals reach the workflow as non-retryable failures, typed
    after the domain error (Conflict, Invalid …) so the API can answer with the right 4xx."""
    try:
        async with transaction(sessions) as session:
            yield session
    except DomainError as refused:
        raise ApplicationError(
            refused.message,
            {"field": refused.field},
            type=type(refused).__name__,
            non_retryable=True,
        ) from None
