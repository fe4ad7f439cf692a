"""Server-rendered pages (zh-CN by default, English on request), one module per concept."""

from fastapi import APIRouter

from api.pages import admin, approval, auth, contract, customer, deal, lead, order, quote, task

router = APIRouter(include_in_schema=False)
for _module in (auth, customer, lead, task, admin, deal, quote, contract, approval, order):
    router.include_router(_module.router)

__all__ = ["router"]
