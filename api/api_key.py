"""API keys for outside systems (admins only): issue, list, revoke."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentActor, RecordId, SessionDep
from domain import api_key
from domain.access import Role

router = APIRouter(prefix="/api/api-keys", tags=["api keys"])


@router.get("")
async def list_keys(actor: CurrentActor, session: SessionDep) -> list[api_key.ApiKeyRead]:
    actor.require_role(Role.admin)
    return [api_key.ApiKeyRead.model_validate(k) for k in await api_key.list_keys(session)]


@router.post("", status_code=201)
async def issue_key(
    data: api_key.ApiKeyCreate, actor: CurrentActor, session: SessionDep
) -> api_key.ApiKeyIssued:
    actor.require_role(Role.admin)
    return await api_key.issue(session, actor=actor, data=data)


@router.delete("/{key_id}")
async def revoke_key(
    key_id: RecordId, actor: CurrentActor, session: SessionDep
) -> api_key.ApiKeyRead:
    actor.require_role(Role.admin)
    return api_key.ApiKeyRead.model_validate(
        await api_key.revoke(session, actor=actor, key_id=key_id)
    )
