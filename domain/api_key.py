"""API keys for outside systems: shown once, kept only as a hash, scoped and revocable."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain import audit
from domain.access import Actor, Role, Scope, Source
from domain.db import Base, utcnow
from domain.errors import NotFound
from domain.schema import Input

PREFIX = "dsk_"
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(12))
    scopes: Mapped[list[str]]
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ApiKeyCreate(Input):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    scopes: Annotated[list[Scope], Field(min_length=1)]


class ApiKeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    hint: str
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyIssued(ApiKeyRead):
    key: str
    """The only time the key is shown: it is stored as a hash."""


def _digest(key: str) -> str:
    # Keys carry 256 random bits, so a plain SHA-256 is safe and keeps each request cheap.
    return hashlib.sha256(key.encode()).hexdigest()


async def issue(session: AsyncSession, *, actor: Actor, data: ApiKeyCreate) -> ApiKeyIssued:
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=data.name,
        key_hash=_digest(key),
        hint=key[-4:],
        scopes=sorted(s.value for s in data.scopes),
        created_by=actor.user_id,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity="api_key",
        entity_id=row.id,
        after={"name": row.name, "scopes": row.scopes},
    )
    return ApiKeyIssued(**ApiKeyRead.model_validate(row).model_dump(), key=key)


async def revoke(session: AsyncSession, *, actor: Actor, key_id: int) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise NotFound("no such API key", field="key_id")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="revoke",
            entity="api_key",
            entity_id=row.id,
            before={"revoked_at": None},
            after={"revoked_at": row.revoked_at},
        )
    return row


async def list_keys(session: AsyncSession) -> list[ApiKey]:
    return list((await session.scalars(select(ApiKey).order_by(ApiKey.id))).all())


async def actor_for_key(session: AsyncSession, *, key: str) -> Actor | None:
    """The actor an API key acts as, or None if it is unknown or revoked."""
    if not key.startswith(PREFIX):
        return None
    row = await session.scalar(select(ApiKey).where(ApiKey.key_hash == _digest(key)))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now  # coarse, so a busy integration does not write on every call
    return Actor(
        user_id=row.created_by,
        name=f"api-key:{row.name}",
        role=Role.admin,
        source=Source.api_key,
        api_key_id=row.id,
        scopes=frozenset(Scope(s) for s in row.scopes),
    )
