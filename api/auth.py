"""Sign-in for the API: OAuth2 password flow giving a bearer token; who am I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from api import tokens
from api.deps import CurrentActor, SessionDep, SettingsDep, Unauthenticated
from domain import audit, user
from domain.access import Source
from domain.db import utcnow

router = APIRouter(prefix="/api/auth", tags=["auth"])


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


async def sign_in(session, settings, *, username: str, password: str, source: Source):
    """The signed-in user and a fresh token; the sign-in is audited either way."""
    row = await user.authenticate(session, username=username, password=password)
    if row is None:
        return None, None
    row.last_sign_in_at = utcnow()
    actor = await user.actor_for(session, user=row, source=source)
    audit.record(session, actor=actor, action="sign_in", entity="user", entity_id=row.id)
    return row, tokens.issue(row, settings)


@router.post("/token")
async def token(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: SessionDep,
    settings: SettingsDep,
) -> Token:
    _row, issued = await sign_in(
        session,
        settings,
        username=form.username[:64],
        password=form.password[:256],
        source=Source.api,
    )
    if issued is None:
        raise Unauthenticated("wrong username or password", field="password")
    return Token(access_token=issued, expires_in=settings.token_ttl_minutes * 60)


@router.get("/me")
async def me(actor: CurrentActor, session: SessionDep) -> user.UserRead:
    if actor.user_id is None or actor.scopes is not None:
        raise Unauthenticated("an API key has no user profile")
    return user.UserRead.model_validate(await user.get(session, user_id=actor.user_id))
