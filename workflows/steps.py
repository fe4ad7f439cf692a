"""What every lifecycle workflow shares: activity options, deadlines, notices, refusals, ids.

Workflow code only: deterministic, no I/O but through activities.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.notification import Notice

DB_STEP: dict[str, Any] = {
    "start_to_close_timeout": timedelta(seconds=30),
    "retry_policy": RetryPolicy(
        initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30)
    ),
}
"""A database write: quick, retried until the database answers."""

NOTIFY: dict[str, Any] = {
    # A mail server or robot that is down must not hold up the next SLA step for long: the
    # in-app task is made first, and a message still unsent after this is given up.
    "start_to_close_timeout": timedelta(seconds=60),
    "schedule_to_close_timeout": timedelta(minutes=10),
    "retry_policy": RetryPolicy(maximum_interval=timedelta(minutes=2)),
}


async def wait_until(due: datetime, moved: Callable[[], bool]) -> bool:
    """Sleep until `due` unless `moved` turns true first; True when the deadline passed."""
    remaining = due - workflow.now()
    if remaining <= timedelta(0):
        return not moved()
    try:
        await workflow.wait_condition(moved, timeout=remaining)
    except TimeoutError:
        return True
    return False


async def notify(notice: Notice) -> None:
    """Tell someone; a channel that refuses for good is logged and the lifecycle goes on."""
    try:
        await workflow.execute_activity("notify", notice, **NOTIFY)
    except ActivityError as failed:
        workflow.logger.warning("notice %s not delivered: %s", notice.key, failed.cause)


def refusal(failed: ActivityError) -> ApplicationError:
    """The activity's own refusal (a limit, missing criteria), for the caller to read."""
    cause = failed.cause
    if isinstance(cause, ApplicationError):
        return ApplicationError(cause.message, *cause.details, type=cause.type, non_retryable=True)
    return ApplicationError(
        "the change could not be saved, try again", type="Unavailable", non_retryable=True
    )


def sibling_id(own: str, concept: str, entity_id: int) -> str:
    """`<prefix>order-7` beside this workflow's `<prefix>contract-3`, where `own` names this
    workflow's entity ("contract-3"): the install's id prefix (settings) carries over."""
    mine = workflow.info().workflow_id
    return f"{mine[: len(mine) - len(own)]}{concept}-{entity_id}"
