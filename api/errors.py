"""One error shape for every 4xx: `detail` is a list of {loc, msg, type}, like FastAPI's own."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from temporalio.client import (
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from domain.errors import Conflict, DomainError

log = logging.getLogger("dossier.api")


def error_body(message: str, *, field: str | None, kind: str, **extra: object) -> dict:
    loc = field.split(".") if field else []
    return {"detail": [{"loc": loc, "msg": message, "type": kind}], **extra}


async def _domain_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    kind = (
        "duplicate"
        if isinstance(exc, Conflict) and "existing_id" in exc.extra
        else (type(exc).__name__.lower())
    )
    return JSONResponse(
        error_body(exc.message, field=exc.field, kind=kind, **exc.extra), status_code=exc.status
    )


async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
    # Input schemas bound every value; this is the last guard so the database never makes a 500.
    log.warning("database refused a value: %s", exc)
    return JSONResponse(
        error_body("a value is out of range for storage", field=None, kind="out_of_range"),
        status_code=422,
    )


async def _database_busy(request: Request, exc: Exception) -> JSONResponse:
    """SQLite allows one writer: past its busy timeout a write is refused, not half done. The
    caller may simply retry; anything else the driver raises is a real fault and stays a 500."""
    assert isinstance(exc, OperationalError)
    if "locked" not in str(exc.orig) and "busy" not in str(exc.orig):
        raise exc
    log.warning("database busy on %s %s: %s", request.method, request.url.path, exc.orig)
    return JSONResponse(
        error_body("the database is busy, nothing was changed; try again", field=None, kind="busy"),
        status_code=503,
        headers={"Retry-After": "1"},
    )


STATUS_FOR_REFUSAL = {"Conflict": 409, "Forbidden": 403, "Invalid": 422, "NotFound": 404}


async def _update_failed(_request: Request, exc: Exception) -> JSONResponse:
    """A workflow refused a transition: its ApplicationError type says which 4xx it is."""
    assert isinstance(exc, WorkflowUpdateFailedError)
    cause = exc.cause
    if not isinstance(cause, ApplicationError):
        log.error("update failed without a reason: %r", exc)
        return JSONResponse(
            error_body("the change could not be made, try again", field=None, kind="unavailable"),
            status_code=503,
        )
    detail = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
    field = detail.get("field") or ("status" if "status" in detail else None)
    extra = {"current_status": detail["status"]} if "status" in detail else {}
    return JSONResponse(
        error_body(cause.message, field=field, kind=(cause.type or "rejected").lower(), **extra),
        status_code=STATUS_FOR_REFUSAL.get(cause.type or "", 409),
    )


async def _temporal_down(_request: Request, exc: Exception) -> JSONResponse:
    log.error("Temporal unavailable: %s", exc)
    return JSONResponse(
        error_body(
            "the workflow engine is unavailable, nothing was changed; try again",
            field=None,
            kind="unavailable",
        ),
        status_code=503,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(DataError, _data_error)
    app.add_exception_handler(OperationalError, _database_busy)
    app.add_exception_handler(WorkflowUpdateFailedError, _update_failed)
    app.add_exception_handler(RPCError, _temporal_down)
    app.add_exception_handler(WorkflowUpdateRPCTimeoutOrCancelledError, _temporal_down)
    app.add_exception_handler(TemporalUnavailable, _temporal_down)


class TemporalUnavailable(Exception):
    """Raised when no Temporal connection can be made for a request that needs one."""
