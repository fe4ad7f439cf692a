"""Liveness with substance: can we reach the database and Temporal?"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

router = APIRouter(tags=["health"])


@router.get("/api/health")
async def health(request: Request) -> JSONResponse:
    """200 when both are up; 503 with the same body when either is down."""
    try:
        async with request.app.state.sessions() as session:
            await session.execute(text("SELECT 1"))
        database = "up"
    except Exception:
        database = "down"
    temporal = "up" if await request.app.state.temporal.reachable() else "down"
    ok = database == "up" and temporal == "up"
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "database": database, "temporal": temporal},
        status_code=200 if ok else 503,
    )
