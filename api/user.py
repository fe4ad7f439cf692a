"""Users and teams: administered by admins, readable by managers."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentActor, RecordId, SessionDep
from domain import user
from domain.access import Role

router = APIRouter(prefix="/api", tags=["users"])


@router.get("/users")
async def list_users(actor: CurrentActor, session: SessionDep) -> list[user.UserRead]:
    actor.require_role(Role.sales_manager, Role.service_manager)
    return [user.UserRead.model_validate(u) for u in await user.list_users(session)]


@router.post("/users", status_code=201)
async def create_user(
    data: user.UserCreate, actor: CurrentActor, session: SessionDep
) -> user.UserRead:
    actor.require_role(Role.admin)
    return user.UserRead.model_validate(await user.create(session, actor=actor, data=data))


@router.get("/users/{user_id}")
async def get_user(user_id: RecordId, actor: CurrentActor, session: SessionDep) -> user.UserRead:
    if user_id != actor.user_id:
        actor.require_role(Role.sales_manager, Role.service_manager)
    return user.UserRead.model_validate(await user.get(session, user_id=user_id))


@router.patch("/users/{user_id}")
async def update_user(
    user_id: RecordId, data: user.UserUpdate, actor: CurrentActor, session: SessionDep
) -> user.UserRead:
    actor.require_role(Role.admin)
    return user.UserRead.model_validate(
        await user.update(session, actor=actor, user_id=user_id, data=data)
    )


@router.get("/teams")
async def list_teams(actor: CurrentActor, session: SessionDep) -> list[user.TeamRead]:
    return [user.TeamRead.model_validate(t) for t in await user.list_teams(session)]


@router.post("/teams", status_code=201)
async def create_team(
    data: user.TeamCreate, actor: CurrentActor, session: SessionDep
) -> user.TeamRead:
    actor.require_role(Role.admin)
    return user.TeamRead.model_validate(await user.create_team(session, actor=actor, data=data))


@router.patch("/teams/{team_id}")
async def update_team(
    team_id: RecordId, data: user.TeamUpdate, actor: CurrentActor, session: SessionDep
) -> user.TeamRead:
    actor.require_role(Role.admin)
    return user.TeamRead.model_validate(
        await user.update_team(session, actor=actor, team_id=team_id, data=data)
    )
