"""The FastAPI app: one engine, one Temporal client, a router per business concept."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from api import (
    api_key,
    approval,
    audit,
    auth,
    behaviour,
    contract,
    custom_field,
    customer,
    deal,
    erp,
    errors,
    export,
    follow_up,
    health,
    imports,
    lead,
    lead_form,
    merge,
    order,
    pages,
    policy,
    product,
    quote,
    task,
    ticket,
    ticket_form,
    user,
)
from api.limits import BodyLimit
from api.temporal import TemporalGateway
from domain.db import create_engine, session_factory
from domain.settings import Settings
from domain.settings import settings as default_settings


def create_app(settings: Settings | None = None, *, temporal: Client | None = None) -> FastAPI:
    """Build the app; tests pass their own settings and a Temporal client of their test server."""
    config = settings or default_settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(config.database_url)
        app.state.settings = config
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.temporal = TemporalGateway(config, temporal)
        yield
        await engine.dispose()

    app = FastAPI(
        title="Dossier",
        summary="Customer profiles and lifecycle automation",
        version="0.1.0",
        lifespan=lifespan,
    )
    errors.install(app)
    for module in (
        health,
        auth,
        user,
        api_key,
        export,  # before the lists: /api/customers/export is not /api/customers/{customer_id}
        merge,  # before customer: /api/customers/duplicates is not /api/customers/{customer_id}
        customer,
        follow_up,
        custom_field,
        task,
        audit,
        lead,
        policy,
        behaviour,
        lead_form,
        erp,
        order,
        product,
        quote,
        deal,
        contract,
        approval,
        ticket,
        ticket_form,
        imports,
    ):
        app.include_router(module.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(packages=[("api", "static")]), name="static")
    app.add_middleware(
        BodyLimit,
        max_bytes=config.max_body_bytes,
        larger={
            path: config.import_max_bytes + imports.MULTIPART_SLACK
            for path in (imports.UPLOAD_PATH, pages.imports.UPLOAD_PATH)
        },
    )
    return app
