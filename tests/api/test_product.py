"""Products and price lists over HTTP: admins edit, everyone signed in browses, SKUs and price
list names are unique, bad input is named by field, and every change is audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.access import Role
from domain.audit import AuditLog
from domain.product import PriceList, Product
from tests.conftest import Login, MakeUser

Headers = dict[str, str]


@pytest.fixture
async def rep(make_user: MakeUser, login: Login) -> Headers:
    await make_user("rep1", Role.sales)
    return await login("rep1")


async def _product(client: httpx.AsyncClient, admin: Headers, **fields: Any) -> dict[str, Any]:
    body = {"sku": "SRV-1", "name": "机架服务器", "list_price": "100.00", **fields}
    response = await client.post("/api/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


async def test_admin_creates_a_product_with_decimal_money(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    made = await _product(client, admin, sku="  SRV-1 ", list_price="12999.9", tax_rate="6")
    assert made["sku"] == "SRV-1"
    assert (made["list_price"], made["tax_rate"]) == ("12999.90", "6.00")
    assert (made["unit"], made["active"]) == ("件", True)
    read = await client.get(f"/api/products/{made['id']}", headers=admin)
    assert read.json()["list_price"] == "12999.90"


async def test_a_duplicate_sku_is_409_naming_sku(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    first = await _product(client, admin)
    again = await client.post(
        "/api/products", json={"sku": "SRV-1", "name": "另一台", "list_price": "1"}, headers=admin
    )
    assert again.status_code == 409
    assert again.json()["detail"][0]["loc"] == ["sku"]
    assert again.json()["existing_id"] == first["id"]
    other = await _product(client, admin, sku="SRV-2")
    renamed = await client.patch(
        f"/api/products/{other['id']}", json={"sku": "SRV-1"}, headers=admin
    )
    assert renamed.status_code == 409 and renamed.json()["detail"][0]["loc"] == ["sku"]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Product)) == 2


async def test_everyone_searches_but_only_admins_edit(
    client: httpx.AsyncClient, admin: Headers, rep: Headers
) -> None:
    server = await _product(client, admin, sku="SRV-1", name="机架服务器")
    await _product(client, admin, sku="SW-OS", name="操作系统授权")
    await _product(client, admin, sku="CBL-9", name="网线")
    gone = await client.delete(f"/api/products/{server['id']}", headers=admin)
    assert gone.status_code == 204

    async def skus(**params: str) -> list[str]:
        response = await client.get("/api/products", params=params, headers=rep)
        assert response.status_code == 200, response.text
        return [p["sku"] for p in response.json()["items"]]

    assert await skus() == ["CBL-9", "SRV-1", "SW-OS"]
    assert await skus(active="true") == ["CBL-9", "SW-OS"]
    assert await skus(active="false") == ["SRV-1"]
    assert await skus(q="sw-") == ["SW-OS"]  # any case
    assert await skus(q="授权") == ["SW-OS"]
    assert await skus(q="%") == []  # a wildcard is a literal character

    forbidden = await client.post(
        "/api/products", json={"sku": "X", "name": "x", "list_price": "1"}, headers=rep
    )
    assert forbidden.status_code == 403
    assert (
        await client.patch(f"/api/products/{server['id']}", json={"name": "y"}, headers=rep)
    ).status_code == 403
    assert (await client.delete(f"/api/products/{server['id']}", headers=rep)).status_code == 403
    assert (await client.get("/api/products")).status_code == 401


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"list_price": "-1"}, ["body", "list_price"]),
        ({"list_price": "1.005"}, ["body", "list_price"]),
        ({"list_price": "NaN"}, ["body", "list_price"]),
        ({"tax_rate": "101"}, ["body", "tax_rate"]),
        ({"sku": "   "}, ["body", "sku"]),
        ({"sku": "x" * 61}, ["body", "sku"]),
        ({"colour": "red"}, ["body", "colour"]),
    ],
)
async def test_bad_product_input_is_422_naming_the_field(
    client: httpx.AsyncClient,
    admin: Headers,
    sessions: async_sessionmaker[AsyncSession],
    fields: dict[str, Any],
    loc: list[str],
) -> None:
    body = {"sku": "SRV-1", "name": "机架服务器", "list_price": "100.00", **fields}
    response = await client.post("/api/products", json=body, headers=admin)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == loc
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Product)) == 0


async def test_a_product_update_cannot_clear_its_price(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    made = await _product(client, admin)
    cleared = await client.patch(
        f"/api/products/{made['id']}", json={"list_price": None}, headers=admin
    )
    assert cleared.status_code == 422
    assert cleared.json()["detail"][0]["loc"] == ["body", "list_price"]


async def test_price_lists_carry_items_and_updates_replace_them(
    client: httpx.AsyncClient, admin: Headers, rep: Headers
) -> None:
    server = await _product(client, admin, sku="SRV-1")
    cable = await _product(client, admin, sku="CBL-9", list_price="5.00")
    made = await client.post(
        "/api/price-lists",
        json={
            "name": "经销商价 2026",
            "valid_from": "2026-01-01",
            "valid_to": "2026-12-31",
            "items": [{"product_id": server["id"], "unit_price": "90"}],
        },
        headers=admin,
    )
    assert made.status_code == 201, made.text
    assert made.json()["currency"] == "CNY"
    assert made.json()["items"] == [{"product_id": server["id"], "unit_price": "90.00"}]

    url = f"/api/price-lists/{made.json()['id']}"
    changed = await client.patch(
        url, json={"items": [{"product_id": cable["id"], "unit_price": "4.50"}]}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    read = await client.get(url, headers=rep)
    assert read.json()["items"] == [{"product_id": cable["id"], "unit_price": "4.50"}]
    assert read.json()["valid_to"] == "2026-12-31"
    assert (await client.delete(url, headers=admin)).status_code == 204
    listed = await client.get("/api/price-lists", params={"active": "true"}, headers=rep)
    assert listed.json() == []
    assert len((await client.get("/api/price-lists", headers=rep)).json()) == 1
    refused = await client.patch(url, json={"name": "我的价格"}, headers=rep)
    assert refused.status_code == 403


def _item(product_id: int, price: str = "1") -> dict[str, Any]:
    return {"product_id": product_id, "unit_price": price}


@pytest.mark.parametrize(
    ("body", "status", "loc"),
    [
        (lambda p: {"items": [_item(999999)]}, 422, ["items", "0", "product_id"]),
        (lambda p: {"items": [_item(p), _item(p)]}, 422, ["items", "1", "product_id"]),
        (lambda p: {"items": [_item(p, "0.001")]}, 422, ["body", "items", 0, "unit_price"]),
        (lambda p: {"items": [_item(p, "-1")]}, 422, ["body", "items", 0, "unit_price"]),
        (lambda p: {"items": [{"product_id": p}]}, 422, ["body", "items", 0, "unit_price"]),
        (lambda p: {"valid_from": "2026-06-01", "valid_to": "2026-05-31"}, 422, ["valid_to"]),
        (lambda p: {"currency": "rmb"}, 422, ["body", "currency"]),
        (lambda p: {"name": "已有价目表"}, 409, ["name"]),
    ],
)
async def test_bad_price_list_input_is_named_and_writes_nothing(
    client: httpx.AsyncClient,
    admin: Headers,
    sessions: async_sessionmaker[AsyncSession],
    body: Callable[[int], dict[str, Any]],
    status: int,
    loc: list[Any],
) -> None:
    product = await _product(client, admin)
    existing = await client.post("/api/price-lists", json={"name": "已有价目表"}, headers=admin)
    assert existing.status_code == 201
    response = await client.post(
        "/api/price-lists", json={"name": "新价目表", **body(product["id"])}, headers=admin
    )
    assert response.status_code == status, response.text
    assert response.json()["detail"][0]["loc"] == loc
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(PriceList)) == 1


async def test_every_catalogue_change_is_audited(
    client: httpx.AsyncClient, admin: Headers, sessions: async_sessionmaker[AsyncSession]
) -> None:
    made = await _product(client, admin)
    await client.patch(f"/api/products/{made['id']}", json={"list_price": "120"}, headers=admin)
    await client.delete(f"/api/products/{made['id']}", headers=admin)
    await client.post("/api/price-lists", json={"name": "零售价"}, headers=admin)
    async with sessions() as session:
        rows = list(
            await session.scalars(
                select(AuditLog)
                .where(AuditLog.entity.in_(["product", "price_list"]))
                .order_by(AuditLog.id)
            )
        )
    assert [(r.entity, r.action) for r in rows] == [
        ("product", "create"),
        ("product", "update"),
        ("product", "update"),
        ("price_list", "create"),
    ]
    assert rows[1].changes["list_price"] == ["100.00", "120.00"]
    assert rows[2].changes["active"] == [True, False]
