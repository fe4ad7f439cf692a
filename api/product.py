"""Product catalogue and price list routes: everyone browses, admins edit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import CurrentActor, RecordId, SessionDep
from domain import product

router = APIRouter(tags=["products"])


@router.get("/api/products")
async def list_products(
    query: Annotated[product.ProductQuery, Query()], _actor: CurrentActor, session: SessionDep
) -> product.ProductPage:
    return await product.search_products(session, query=query)


@router.post("/api/products", status_code=201)
async def create_product(
    data: product.ProductCreate, actor: CurrentActor, session: SessionDep
) -> product.ProductRead:
    row = await product.create_product(session, actor=actor, data=data)
    return product.ProductRead.model_validate(row)


@router.get("/api/products/{product_id}")
async def get_product(
    product_id: RecordId, _actor: CurrentActor, session: SessionDep
) -> product.ProductRead:
    row = await product.get_product(session, product_id=product_id)
    return product.ProductRead.model_validate(row)


@router.patch("/api/products/{product_id}")
async def update_product(
    product_id: RecordId, data: product.ProductUpdate, actor: CurrentActor, session: SessionDep
) -> product.ProductRead:
    row = await product.update_product(session, actor=actor, product_id=product_id, data=data)
    return product.ProductRead.model_validate(row)


@router.delete("/api/products/{product_id}", status_code=204)
async def deactivate_product(
    product_id: RecordId, actor: CurrentActor, session: SessionDep
) -> Response:
    """Deactivates: the product stays for the quotes that name it."""
    await product.deactivate_product(session, actor=actor, product_id=product_id)
    return Response(status_code=204)


@router.get("/api/price-lists")
async def list_price_lists(
    _actor: CurrentActor,
    session: SessionDep,
    active: Annotated[bool | None, Query(description="Left out: all")] = None,
) -> list[product.PriceListRead]:
    rows = await product.list_price_lists(session, active=active)
    return [await product.price_list_read(session, row) for row in rows]


@router.post("/api/price-lists", status_code=201)
async def create_price_list(
    data: product.PriceListCreate, actor: CurrentActor, session: SessionDep
) -> product.PriceListRead:
    row = await product.create_price_list(session, actor=actor, data=data)
    return await product.price_list_read(session, row)


@router.get("/api/price-lists/{price_list_id}")
async def get_price_list(
    price_list_id: RecordId, _actor: CurrentActor, session: SessionDep
) -> product.PriceListRead:
    row = await product.get_price_list(session, price_list_id=price_list_id)
    return await product.price_list_read(session, row)


@router.patch("/api/price-lists/{price_list_id}")
async def update_price_list(
    price_list_id: RecordId,
    data: product.PriceListUpdate,
    actor: CurrentActor,
    session: SessionDep,
) -> product.PriceListRead:
    row = await product.update_price_list(
        session, actor=actor, price_list_id=price_list_id, data=data
    )
    return await product.price_list_read(session, row)


@router.delete("/api/price-lists/{price_list_id}", status_code=204)
async def deactivate_price_list(
    price_list_id: RecordId, actor: CurrentActor, session: SessionDep
) -> Response:
    """Deactivates: quotes priced from it keep their prices."""
    await product.deactivate_price_list(session, actor=actor, price_list_id=price_list_id)
    return Response(status_code=204)
