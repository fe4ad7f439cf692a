"""Users, roles and teams: who may sign in, and who their manager is."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator
from sqlalchemy import Boolean, ForeignKey, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain import audit, normalize
from domain.access import Actor, ApproverGroup, Role, Source
from domain.db import Base, Timestamped
from domain.errors import Conflict, Invalid, NotFound
from domain.schema import DbId, Input, Patch

# argon2id with OWASP's recommended floor (19 MiB, 2 passes): strong, and ~50 ms per sign-in.
_hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)
# Verifying against this keeps sign-in time the same whether or not the user exists.
_DUMMY_HASH = _hasher.hash("dossier-timing-equaliser")


class Team(Base, Timestamped):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL", use_alter=True, name="fk_teams_manager")
    )
    calendar: Mapped[str] = mapped_column(String(60), default="default", server_default="default")
    """Name of the calendar policy whose business hours count for this team's SLAs."""
    robot_kind: Mapped[str | None] = mapped_column(String(20))
    """Chat robot for team notifications: wecom, dingtalk or feishu."""
    robot_url: Mapped[str | None] = mapped_column(String(500))
    robot_secret: Mapped[str | None] = mapped_column(String(200))


class User(Base, Timestamped):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(30))
    approver_group: Mapped[str | None] = mapped_column(String(30))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    on_leave: Mapped[bool] = mapped_column(Boolean, default=False)
    delegate_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    """Who answers this user's approvals while they are on leave."""
    locale: Mapped[str] = mapped_column(String(10), default="zh-CN")
    last_sign_in_at: Mapped[datetime | None]
    skills: Mapped[list[str]] = mapped_column(default=list, server_default="[]")
    """Skill tags (products, ticket types, languages) that ticket dispatch matches on."""


Username = Annotated[str, Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
Password = Annotated[SecretStr, Field(min_length=8, max_length=256)]
Locale = Annotated[str, Field(pattern=r"^(zh-CN|en)$")]
Skills = Annotated[
    list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]],
    Field(max_length=50),
]


class UserCreate(Input):
    username: Username
    display_name: Annotated[str, Field(min_length=1, max_length=100)]
    password: Password
    role: Role
    approver_group: ApproverGroup | None = None
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    team_id: DbId | None = None
    delegate_id: DbId | None = None
    locale: Locale = "zh-CN"
    skills: Skills = Field(default_factory=list)

    @field_validator("display_name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = re.sub(r"\s+", " ", value).strip()
        if not value:
            raise ValueError("must not be blank")
        return value


class UserUpdate(Patch):
    not_null = frozenset(
        {"display_name", "password", "role", "active", "on_leave", "locale", "skills"}
    )

    display_name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    password: Password | None = None
    role: Role | None = None
    approver_group: ApproverGroup | None = None
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=40)
    team_id: DbId | None = None
    delegate_id: DbId | None = None
    """Who answers this user's approvals while they are on leave."""
    active: bool | None = None
    on_leave: bool | None = None
    locale: Locale | None = None
    skills: Skills | None = None


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    email: str | None
    phone: str | None
    role: Role
    approver_group: ApproverGroup | None
    team_id: int | None
    delegate_id: int | None
    active: bool
    on_leave: bool
    locale: str
    skills: list[str]


class TeamCreate(Input):
    name: Annotated[str, Field(min_length=1, max_length=100)]
    manager_id: DbId | None = None


class TeamUpdate(Patch):
    not_null = frozenset({"name"})

    name: Annotated[str, Field(min_length=1, max_length=100)] | None = None
    manager_id: DbId | None = None


class TeamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    manager_id: int | None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _snapshot(user: User) -> dict[str, Any]:
    return {k: getattr(user, k) for k in UserRead.model_fields if k != "id"}


def _normalised_contacts(data: dict[str, Any]) -> dict[str, Any]:
    if data.get("email"):
        data["email"] = normalize.email(data["email"])
    if data.get("phone"):
        data["phone"] = normalize.phone(data["phone"])
    return data


async def _check_team(session: AsyncSession, team_id: int | None) -> None:
    if team_id is not None and await session.get(Team, team_id) is None:
        raise Invalid("no such team", field="team_id")


async def _check_delegate(session: AsyncSession, *, delegate_id: int, user_id: int | None) -> None:
    delegate = await session.get(User, delegate_id)
    if delegate is None or not delegate.active:
        raise Invalid("no such active user", field="delegate_id")
    if delegate_id == user_id:
        raise Invalid("a user cannot be their own delegate", field="delegate_id")


async def create(session: AsyncSession, *, actor: Actor, data: UserCreate) -> User:
    if await get_by_username(session, username=data.username) is not None:
        raise Conflict("username is taken", field="username")
    await _check_team(session, data.team_id)
    if data.delegate_id is not None:
        await _check_delegate(session, delegate_id=data.delegate_id, user_id=None)
    fields = _normalised_contacts(data.model_dump(exclude={"password"}))
    user = User(**fields, password_hash=hash_password(data.password.get_secret_value()))
    session.add(user)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity="user",
        entity_id=user.id,
        after=_snapshot(user),
    )
    return user


async def update(session: AsyncSession, *, actor: Actor, user_id: int, data: UserUpdate) -> User:
    user = await get(session, user_id=user_id)
    before = _snapshot(user)
    fields = _normalised_contacts(data.model_dump(exclude_unset=True, exclude={"password"}))
    if "team_id" in fields:
        await _check_team(session, fields["team_id"])
    if fields.get("delegate_id") is not None:
        await _check_delegate(session, delegate_id=fields["delegate_id"], user_id=user.id)
    for key, value in fields.items():
        setattr(user, key, value)
    if data.password is not None:
        user.password_hash = hash_password(data.password.get_secret_value())
    await session.flush()
    note = {"password": "changed"} if data.password is not None else None
    audit.record(
        session,
        actor=actor,
        action="update",
        entity="user",
        entity_id=user.id,
        before=before,
        after=_snapshot(user),
        note=note,
    )
    return user


async def get(session: AsyncSession, *, user_id: int) -> User:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("no such user", field="user_id")
    return user


async def get_by_username(session: AsyncSession, *, username: str) -> User | None:
    return await session.scalar(select(User).where(func.lower(User.username) == username.lower()))


async def list_users(session: AsyncSession, *, team_id: int | None = None) -> list[User]:
    query = select(User).order_by(User.id)
    if team_id is not None:
        query = query.where(User.team_id == team_id)
    return list((await session.scalars(query)).all())


async def authenticate(session: AsyncSession, *, username: str, password: str) -> User | None:
    """The active user with this username and password, or None; same cost either way."""
    user = await get_by_username(session, username=username)
    try:
        _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


async def actor_for(session: AsyncSession, *, user: User, source: Source) -> Actor:
    managed = await session.scalars(select(Team.id).where(Team.manager_id == user.id))
    return Actor(
        user_id=user.id,
        name=user.username,
        role=Role(user.role),
        source=source,
        team_id=user.team_id,
        managed_team_ids=frozenset(managed.all()),
        locale=user.locale,
    )


async def manager_of(session: AsyncSession, *, user_id: int) -> User | None:
    """The manager of the user's team: whom "escalate to my manager" reaches."""
    user = await get(session, user_id=user_id)
    if user.team_id is None:
        return None
    team = await session.get(Team, user.team_id)
    if team is None or team.manager_id is None or team.manager_id == user.id:
        return None
    return await session.get(User, team.manager_id)


async def answers_for(session: AsyncSession, *, actor: Actor, owner_id: int | None) -> bool:
    """Whether the actor may act on a record owned by `owner_id`: the owner, a manager of the
    owner's team, or an admin (API keys act only through their scopes, never as owners)."""
    if actor.scopes is not None:
        return False
    if actor.role is Role.admin or (owner_id is not None and actor.user_id == owner_id):
        return True
    if actor.role is Role.sales_manager and owner_id is not None:
        owner = await session.get(User, owner_id)
        return owner is not None and owner.team_id in actor.managed_team_ids
    return False


async def create_team(session: AsyncSession, *, actor: Actor, data: TeamCreate) -> Team:
    if await session.scalar(select(Team).where(Team.name == data.name)) is not None:
        raise Conflict("team name is taken", field="name")
    if data.manager_id is not None:
        await get(session, user_id=data.manager_id)
    team = Team(**data.model_dump())
    session.add(team)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity="team",
        entity_id=team.id,
        after=data.model_dump(),
    )
    return team


async def update_team(
    session: AsyncSession, *, actor: Actor, team_id: int, data: TeamUpdate
) -> Team:
    team = await session.get(Team, team_id)
    if team is None:
        raise NotFound("no such team", field="team_id")
    before = {"name": team.name, "manager_id": team.manager_id}
    fields = data.model_dump(exclude_unset=True)
    if fields.get("manager_id") is not None:
        await get(session, user_id=fields["manager_id"])
    for key, value in fields.items():
        setattr(team, key, value)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="update",
        entity="team",
        entity_id=team.id,
        before=before,
        after={"name": team.name, "manager_id": team.manager_id},
    )
    return team


async def list_teams(session: AsyncSession) -> list[Team]:
    return list((await session.scalars(select(Team).order_by(Team.id))).all())
