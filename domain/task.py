"""Tasks: what a person must do, shown in their inbox. Workflows create them idempotently."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ForeignKey, Index, Select, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain import audit
from domain.access import Actor, Role
from domain.db import Base, utcnow
from domain.errors import Conflict, NotFound
from domain.schema import DbId, Input


class TaskStatus(StrEnum):
    open = "open"
    done = "done"
    cancelled = "cancelled"


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_assignee_status_due", "assignee_id", "status", "due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    """Idempotency key (workflow id + step), so a retried activity never makes a second task."""
    kind: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(String(300))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    customer_id: Mapped[int | None] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    ref_entity: Mapped[str | None] = mapped_column(String(40))
    ref_id: Mapped[int | None]
    workflow_id: Mapped[str | None] = mapped_column(String(100))
    due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default=TaskStatus.open.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    outcome: Mapped[dict[str, Any]] = mapped_column(default=dict)


class TaskRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    title: str
    detail: dict[str, Any]
    assignee_id: int | None
    customer_id: int | None
    ref_entity: str | None
    ref_id: int | None
    due_at: datetime | None
    status: TaskStatus
    created_at: datetime
    completed_at: datetime | None
    completed_by: int | None
    outcome: dict[str, Any]


class TaskComplete(Input):
    decision: Literal["approve", "reject", "request_changes"] | None = None
    """Required for approval tasks: the answer goes to the approval's workflow."""
    comment: Annotated[str, Field(max_length=2000)] | None = None


class TaskPage(BaseModel):
    items: list[TaskRead]
    total: int


class NewTask(BaseModel):
    """What a workflow asks for; `key` makes the request safe to repeat."""

    key: str
    kind: str
    title: str
    assignee_id: int | None
    customer_id: DbId | None = None
    ref_entity: str | None = None
    ref_id: DbId | None = None
    workflow_id: str | None = None
    due_at: datetime | None = None
    detail: dict[str, Any] = {}


def select_by_key(key: str) -> Select[tuple[Task]]:
    return select(Task).where(Task.key == key)


async def open_task(session: AsyncSession, *, new: NewTask) -> Task:
    """Create the task, or return the one already made under the same key."""
    existing = await session.scalar(select_by_key(new.key))
    if existing is not None:
        return existing
    task = Task(**new.model_dump())
    session.add(task)
    await session.flush()
    return task


async def inbox(
    session: AsyncSession,
    *,
    actor: Actor,
    assignee_id: int | None,
    status: TaskStatus | None,
    limit: int = 50,
    offset: int = 0,
) -> TaskPage:
    """Tasks of one assignee, due soonest first; others' inboxes are for managers and admins."""
    if assignee_id != actor.user_id:
        actor.require_role(Role.sales_manager, Role.service_manager)
    where = []
    if assignee_id is not None:
        where.append(Task.assignee_id == assignee_id)
    if status is not None:
        where.append(Task.status == status.value)
    total = await session.scalar(select(func.count(Task.id)).where(*where))
    rows = await session.scalars(
        select(Task)
        .where(*where)
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id)
        .offset(offset)
        .limit(limit)
    )
    return TaskPage(items=[TaskRead.model_validate(t) for t in rows], total=total or 0)


async def get_own(session: AsyncSession, *, actor: Actor, task_id: int) -> Task:
    """A task of the actor's inbox (admins: any); others' tasks are not found (no leaks)."""
    task = await session.get(Task, task_id)
    if task is None or (task.assignee_id != actor.user_id and not actor.is_admin):
        raise NotFound("no such task", field="task_id")
    return task


async def complete(
    session: AsyncSession, *, actor: Actor, task_id: int, data: TaskComplete
) -> Task:
    """Mark a plain to-do done. Tasks a workflow waits on are answered through that workflow."""
    task = await get_own(session, actor=actor, task_id=task_id)
    if task.status != TaskStatus.open.value:
        raise Conflict(f"the task is already {task.status}", field="status")
    task.status = TaskStatus.done.value
    task.completed_at = utcnow()
    task.completed_by = actor.user_id
    task.outcome = {"comment": data.comment} if data.comment else {}
    audit.record(
        session,
        actor=actor,
        action="complete",
        entity="task",
        entity_id=task.id,
        before={"status": "open"},
        after={"status": task.status},
    )
    return task
