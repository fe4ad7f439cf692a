"""Typed dependencies: a DB session, the signed-in actor, the Temporal client, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Path, Request
from fastapi.security import OAuth2PasswordBearer
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from api import tokens
from domain import api_key, user
from domain.access import Actor, Source
from domain.errors import DomainError
from domain.schema import MAX_ID
from domain.settings import Settings

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


class Unauthenticated(DomainError):
    status = 401


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request: committed when the route returns, rolled back on error."""
    async with request.app.state.sessions() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
"""Committed when the route function returns, so the response never reports a write that
then fails to commit."""


Read = TypeVar("Read", bound=BaseModel)


async def committed(request: Request, model: type[Any], record_id: int, schema: type[Read]) -> Read:
    """The record as a workflow's activity committed it, read in a transaction of its own: the
    request's transaction may hold an older snapshot (SQLite) than that activity's write."""
    async with request.app.state.sessions() as fresh:
        return schema.model_validate(await fresh.get(model, record_id))


async def transition(
    handle: WorkflowHandle, update: Any, argument: Any,
    ended: Callable[[], Awaitable[DomainError]],
) -> Any:
    """Ask a record's workflow for one transition. The caller found the record open, but it may
    close before the update arrives: its workflow has then ended and Temporal no longer finds
    it, and `ended` gives the refusal the record's own rules give (a 409, not the 503 of a
    Temporal that cannot be reached). The update's result."""
    try:
        return await handle.execute_update(update, argument)
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise await ended() from None
        raise


async def get_temporal(request: Request) -> Client:
    return await request.app.state.temporal.client()


async def _actor(request: Request, session: AsyncSession, bearer: str | None) -> Actor | None:
    settings: Settings = request.app.state.settings
    key = request.headers.get("x-api-key") or (
        bearer if bearer and bearer.startswith(api_key.PREFIX) else None
    )
    if key:
        return await api_key.actor_for_key(session, key=key)
    token, source = (
        (bearer, Source.api) if bearer else (request.cookies.get(tokens.COOKIE), Source.page)
    )
    if not token:
        return None
    decoded = tokens.user_id(token, settings)
    if decoded is None:
        return None
    row = await session.get(user.User, decoded[0])
    if row is None or not tokens.still_valid(row, decoded[1]):
        return None
    return await user.actor_for(session, user=row, source=source)


async def current_actor(
    request: Request,
    session: SessionDep,
    bearer: Annotated[str | None, Depends(oauth2)],
) -> Actor:
    actor = await _actor(request, session, bearer)
    if actor is None:
        raise Unauthenticated("sign in first: a bearer token, an API key or a session")
    return actor


async def optional_actor(
    request: Request,
    session: SessionDep,
    bearer: Annotated[str | None, Depends(oauth2)],
) -> Actor | None:
    return await _actor(request, session, bearer)


CurrentActor = Annotated[Actor, Depends(current_actor)]
OptionalActor = Annotated[Actor | None, Depends(optional_actor)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RecordId = Annotated[int, Path(ge=1, le=MAX_ID)]
