"""The audit log, for admins."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentActor, SessionDep
from domain import audit
from domain.access import Role

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("")
async def read_log(
    actor: CurrentActor,
    session: SessionDep,
    entity: Annotated[str | None, Query(max_length=40)] = None,
    entity_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    actor_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[audit.AuditRead]:
    actor.require_role(Role.admin)
    rows = await audit.history(
        session,
        entity=entity,
        entity_id=entity_id,
        actor_id=actor_id,
        before_id=before_id,
        limit=limit,
    )
    return [audit.AuditRead.model_validate(r) for r in rows]
