"""Server-rendered pages (zh-CN by default, English on request), one module per concept."""

from fastapi import APIRouter

from api.pages import (
    admin,
    approval,
    auth,
    contract,
    customer,
    deal,
    imports,
    lead,
    merge,
    order,
    quote,
    task,
    ticket,
)

router = APIRouter(include_in_schema=False)
# merge before customer: its /customers/duplicates would otherwise be read as a customer id
for _module in (
    auth, merge, customer, lead, task, admin, deal, quote, contract, approval, order, ticket,
    imports,
):
    router.include_router(_module.router)

__all__ = ["router"]
