"""A workflow's refusal (a failed Update) as something a page can show, never a 500.

Deal moves and approval answers are Updates on their workflows; a validator's or activity's
`ApplicationError` carries an English reason and a type (Conflict, Forbidden, Invalid) that
the JSON API turns into 409/403/422. The pages show that reason in the user's language, with
the same status, next to the form that asked.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import STATUS_FOR_REFUSAL
from api.pages.base import Page
from domain.errors import DomainError

T = TypeVar("T")
Translate = Callable[[Page, str], str]
DETAIL = re.compile(r"\s*\([^)]*\)$")
"""A trailing "(approved)" names a current state; the catalog key is the message without it."""


class Refusal(DomainError):
    """The workflow would not make the change; `message` is already in the user's language."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def plain_text(page: Page, message: str) -> str:
    """The catalog's words for a refusal, looked up with and without its trailing detail."""
    shown = page.t.error(message)
    if shown == message:
        shown = page.t.error(DETAIL.sub("", message))
    return shown


async def through_workflow(
    page: Page, step: Callable[[], Awaitable[T]], translate: Translate = plain_text
) -> T:
    """Run an API call that ends in a workflow Update; its refusal becomes a `Refusal`.

    A domain refusal raised before the Update (the row says it is already answered) is
    translated the same way, so both read alike on the page.
    """
    try:
        return await step()
    except WorkflowUpdateFailedError as failed:
        cause = failed.cause
        if not isinstance(cause, ApplicationError):
            raise Refusal(page.t("refusal.unknown"), 503) from None
        status = STATUS_FOR_REFUSAL.get(cause.type or "", 409)
        raise Refusal(translate(page, cause.message), status) from None
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:  # the workflow has ended meanwhile
            raise Refusal(page.t("refusal.closed"), 409) from None
        raise
    except DomainError as exc:
        if isinstance(exc, Refusal) or exc.status == 404:
            raise
        raise Refusal(translate(page, exc.message), exc.status) from None
