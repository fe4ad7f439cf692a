"""Custom field definitions: admins define them per entity; everyone reads them for forms."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CurrentActor, RecordId, SessionDep
from domain import custom_field
from domain.access import Role

router = APIRouter(prefix="/api/custom-fields", tags=["custom fields"])


@router.get("")
async def list_fields(
    entity: custom_field.FieldEntity,
    actor: CurrentActor,
    session: SessionDep,
    include_retired: Annotated[bool, Query()] = False,
) -> list[custom_field.CustomFieldRead]:
    rows = await custom_field.list_fields(session, entity=entity, include_retired=include_retired)
    return [custom_field.CustomFieldRead.model_validate(r) for r in rows]


@router.post("", status_code=201)
async def create_field(
    data: custom_field.CustomFieldCreate, actor: CurrentActor, session: SessionDep
) -> custom_field.CustomFieldRead:
    actor.require_role(Role.admin)
    row = await custom_field.create(session, actor=actor, data=data)
    return custom_field.CustomFieldRead.model_validate(row)


@router.patch("/{field_id}")
async def update_field(
    field_id: RecordId,
    data: custom_field.CustomFieldUpdate,
    actor: CurrentActor,
    session: SessionDep,
) -> custom_field.CustomFieldRead:
    """Renaming changes the label; values stay under the unchanged key."""
    actor.require_role(Role.admin)
    row = await custom_field.update(session, actor=actor, field_id=field_id, data=data)
    return custom_field.CustomFieldRead.model_validate(row)


@router.post("/{field_id}/retire")
async def retire_field(
    field_id: RecordId, actor: CurrentActor, session: SessionDep
) -> custom_field.CustomFieldRead:
    """Hidden from forms and no longer writable; stored values are kept."""
    actor.require_role(Role.admin)
    row = await custom_field.retire(session, actor=actor, field_id=field_id)
    return custom_field.CustomFieldRead.model_validate(row)


@router.post("/{field_id}/restore")
async def restore_field(
    field_id: RecordId, actor: CurrentActor, session: SessionDep
) -> custom_field.CustomFieldRead:
    actor.require_role(Role.admin)
    row = await custom_field.restore(session, actor=actor, field_id=field_id)
    return custom_field.CustomFieldRead.model_validate(row)
