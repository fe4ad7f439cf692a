"""Policies over HTTP: read the version in force and its history; admins publish new versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query

from api.deps import CurrentActor, SessionDep
from domain import policy
from domain.access import Actor, Role
from domain.schema import MAX_ID

router = APIRouter(prefix="/api/policies", tags=["policies"])

Name = Annotated[str, Query(min_length=1, max_length=60, description="default, or a calendar's")]
Version = Annotated[int, Path(ge=1, le=MAX_ID)]


def _may_read(actor: Actor) -> None:
    """Managers read the rules their teams run under; admins also write them."""
    actor.require_role(Role.sales_manager, Role.service_manager)


@router.get("/{kind}")
async def current(
    kind: policy.PolicyKind, actor: CurrentActor, session: SessionDep, name: Name = "default"
) -> policy.PolicyCurrent:
    """The version in force, or version 0 with the built-in defaults when none is published."""
    _may_read(actor)
    row = await policy.in_force(session, kind=kind, name=name)
    if row is None:
        data = policy.model_for(kind)().model_dump(mode="json")
        return policy.PolicyCurrent(kind=kind, name=name, version=0, data=data)
    return policy.PolicyCurrent.model_validate(row, from_attributes=True)


@router.get("/{kind}/versions")
async def versions(
    kind: policy.PolicyKind, actor: CurrentActor, session: SessionDep, name: Name = "default"
) -> list[policy.PolicyRead]:
    """Every published version, newest first."""
    _may_read(actor)
    rows = await policy.versions(session, kind=kind, name=name)
    return [policy.PolicyRead.model_validate(r) for r in rows]


@router.get("/{kind}/versions/{version}")
async def version(
    kind: policy.PolicyKind,
    version: Version,
    actor: CurrentActor,
    session: SessionDep,
    name: Name = "default",
) -> policy.PolicyRead:
    _may_read(actor)
    row = await policy.get_version(session, kind=kind, name=name, version=version)
    return policy.PolicyRead.model_validate(row)


@router.put("/{kind}", status_code=201)
async def publish(
    kind: policy.PolicyKind,
    data: Annotated[dict[str, Any], Body()],
    actor: CurrentActor,
    session: SessionDep,
    name: Name = "default",
) -> policy.PolicyRead:
    """Publish `data` as the next version; running workflows keep the version they pinned."""
    actor.require_role(Role.admin)
    row = await policy.publish(session, actor=actor, kind=kind, name=name, data=data)
    return policy.PolicyRead.model_validate(row)
