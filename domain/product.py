"""Products and price lists: what quotes are priced from. Plain records, edited by admins."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import (
    Boolean,
    ForeignKey,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain import audit
from domain.access import Actor, Role
from domain.db import Base, Timestamped, utcnow
from domain.errors import Conflict, Invalid, NotFound
from domain.schema import DbId, Input, Patch

Rate = Numeric(5, 2)
"""A percentage with two decimals: 13.00 for 13 % VAT, 12.50 for a 12.5 % discount."""


class Product(Base, Timestamped):
    __tablename__ = "products"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(20), default="件")
    list_price: Mapped[Decimal]
    tax_rate: Mapped[Decimal] = mapped_column(Rate, default=Decimal("13.00"))
    line: Mapped[str | None] = mapped_column(String(60))
    """Product line: which pipeline its deals usually run in."""
    description: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PriceList(Base, Timestamped):
    __tablename__ = "price_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    valid_from: Mapped[date | None]
    valid_to: Mapped[date | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PriceListItem(Base):
    __tablename__ = "price_list_items"
    __table_args__ = (UniqueConstraint("price_list_id", "product_id", name="uq_price_list_item"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    price_list_id: Mapped[int] = mapped_column(ForeignKey("price_lists.id", ondelete="CASCADE"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    unit_price: Mapped[Decimal]


# Schemas ----------------------------------------------------------------------------------

Price = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=2)]
"""A unit price in yuan: not negative, to the fen (Numeric(18, 2) with room for the sums)."""
Percent = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2)]
"""A rate or discount in percent with at most two decimals, as `Rate` stores it."""
Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Unit = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
ListName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
"""ISO 4217, upper case: CNY, USD."""


class ProductCreate(Input):
    sku: Sku
    name: Name
    unit: Unit = "件"
    list_price: Price
    tax_rate: Percent = Decimal("13")
    line: Annotated[str, Field(max_length=60)] | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None
    active: bool = True


class ProductUpdate(Patch):
    not_null = frozenset({"sku", "name", "unit", "list_price", "tax_rate", "active"})

    sku: Sku | None = None
    name: Name | None = None
    unit: Unit | None = None
    list_price: Price | None = None
    tax_rate: Percent | None = None
    line: Annotated[str, Field(max_length=60)] | None = None
    description: Annotated[str, Field(max_length=10_000)] | None = None
    active: bool | None = None


class ProductRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    name: str
    unit: str
    list_price: Decimal
    tax_rate: Decimal
    line: str | None
    description: str | None
    active: bool
    created_at: datetime
    updated_at: datetime


class ProductQuery(BaseModel):
    q: Annotated[str, Field(max_length=100)] | None = None
    """Part of the SKU or the name, any case."""
    active: bool | None = None
    """true for what can be quoted today, false for retired products; all when left out."""
    page: Annotated[int, Field(ge=1, le=100_000)] = 1
    size: Annotated[int, Field(ge=1, le=200)] = 50


class ProductPage(BaseModel):
    items: list[ProductRead]
    total: int
    page: int
    size: int


class PriceListItemIn(Input):
    product_id: DbId
    unit_price: Price


class PriceListItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    product_id: int
    unit_price: Decimal


class _PriceListFields(Input):
    valid_from: date | None = None
    valid_to: date | None = None
    items: Annotated[list[PriceListItemIn], Field(max_length=2000)] | None = None


class PriceListCreate(_PriceListFields):
    name: ListName
    currency: Currency = "CNY"
    active: bool = True


class PriceListUpdate(_PriceListFields, Patch):
    """Sent `items` replace the whole list of items."""

    not_null = frozenset({"name", "currency", "active", "items"})

    name: ListName | None = None
    currency: Currency | None = None
    active: bool | None = None


class PriceListRead(BaseModel):
    id: int
    name: str
    currency: str
    valid_from: date | None
    valid_to: date | None
    active: bool
    items: list[PriceListItemRead]
    created_at: datetime
    updated_at: datetime


# Service ----------------------------------------------------------------------------------

PRODUCT = "product"
PRICE_LIST = "price_list"
FEN = Decimal("0.01")
MONEY_FIELDS = ("list_price", "tax_rate", "unit_price")


def _to_fen(fields: dict[str, Any]) -> dict[str, Any]:
    """Money and rates as stored (100.00, 6.00), so what a write returns matches a later read."""
    return {
        key: value.quantize(FEN) if key in MONEY_FIELDS and value is not None else value
        for key, value in fields.items()
    }


def _product_snapshot(product: Product) -> dict[str, Any]:
    return ProductRead.model_validate(product).model_dump(
        exclude={"id", "created_at", "updated_at"}
    )


async def _guard_sku(session: AsyncSession, *, sku: str, exclude_id: int | None) -> None:
    query = select(Product.id).where(Product.sku == sku)
    if exclude_id is not None:
        query = query.where(Product.id != exclude_id)
    existing = await session.scalar(query)
    if existing is not None:
        raise Conflict(f"a product with SKU {sku} exists", field="sku", existing_id=existing)


async def _flush_unique(session: AsyncSession, *, field: str) -> None:
    """Flush; a concurrent insert of the same unique value becomes a 409 naming `field`."""
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"this {field} was just taken, choose another", field=field) from None


async def get_product(session: AsyncSession, *, product_id: int) -> Product:
    product = await session.get(Product, product_id)
    if product is None:
        raise NotFound("no such product", field="product_id")
    return product


async def create_product(session: AsyncSession, *, actor: Actor, data: ProductCreate) -> Product:
    actor.require_role(Role.admin)
    await _guard_sku(session, sku=data.sku, exclude_id=None)
    product = Product(**_to_fen(data.model_dump()))
    session.add(product)
    await _flush_unique(session, field="sku")
    audit.record(
        session,
        actor=actor,
        action="create",
        entity=PRODUCT,
        entity_id=product.id,
        after=_product_snapshot(product),
    )
    return product


async def update_product(
    session: AsyncSession, *, actor: Actor, product_id: int, data: ProductUpdate
) -> Product:
    actor.require_role(Role.admin)
    product = await get_product(session, product_id=product_id)
    fields = _to_fen(data.model_dump(exclude_unset=True))
    if "sku" in fields:
        await _guard_sku(session, sku=fields["sku"], exclude_id=product.id)
    before = _product_snapshot(product)
    for key, value in fields.items():
        setattr(product, key, value)
    product.updated_at = utcnow()
    await _flush_unique(session, field="sku")
    audit.record(
        session,
        actor=actor,
        action="update",
        entity=PRODUCT,
        entity_id=product.id,
        before=before,
        after=_product_snapshot(product),
    )
    return product


async def deactivate_product(session: AsyncSession, *, actor: Actor, product_id: int) -> Product:
    """Retire a product: quotes that name it keep their lines, new quotes cannot pick it."""
    return await update_product(
        session, actor=actor, product_id=product_id, data=ProductUpdate(active=False)
    )


async def search_products(session: AsyncSession, *, query: ProductQuery) -> ProductPage:
    """Any signed-in user may browse the catalogue: it is what they quote from."""
    where = []
    if query.active is not None:
        where.append(Product.active.is_(query.active))
    text = (query.q or "").strip()
    if text:
        where.append(
            or_(
                Product.sku.icontains(text, autoescape=True),
                Product.name.icontains(text, autoescape=True),
            )
        )
    total = await session.scalar(select(func.count()).select_from(Product).where(*where))
    rows = await session.scalars(
        select(Product)
        .where(*where)
        .order_by(Product.sku, Product.id)
        .offset((query.page - 1) * query.size)
        .limit(query.size)
    )
    return ProductPage(
        items=[ProductRead.model_validate(p) for p in rows],
        total=total or 0,
        page=query.page,
        size=query.size,
    )


async def price_list_items(session: AsyncSession, *, price_list_id: int) -> list[PriceListItem]:
    rows = await session.scalars(
        select(PriceListItem)
        .where(PriceListItem.price_list_id == price_list_id)
        .order_by(PriceListItem.product_id)
    )
    return list(rows.all())


async def price_list_read(session: AsyncSession, price_list: PriceList) -> PriceListRead:
    items = await price_list_items(session, price_list_id=price_list.id)
    return PriceListRead(
        id=price_list.id,
        name=price_list.name,
        currency=price_list.currency,
        valid_from=price_list.valid_from,
        valid_to=price_list.valid_to,
        active=price_list.active,
        items=[PriceListItemRead.model_validate(i) for i in items],
        created_at=price_list.created_at,
        updated_at=price_list.updated_at,
    )


async def get_price_list(session: AsyncSession, *, price_list_id: int) -> PriceList:
    price_list = await session.get(PriceList, price_list_id)
    if price_list is None:
        raise NotFound("no such price list", field="price_list_id")
    return price_list


async def list_price_lists(session: AsyncSession, *, active: bool | None) -> list[PriceList]:
    query = select(PriceList).order_by(PriceList.name, PriceList.id)
    if active is not None:
        query = query.where(PriceList.active.is_(active))
    return list((await session.scalars(query)).all())


async def _price_list_snapshot(session: AsyncSession, price_list: PriceList) -> dict[str, Any]:
    read = await price_list_read(session, price_list)
    return read.model_dump(exclude={"id", "created_at", "updated_at"})


async def _guard_name(session: AsyncSession, *, name: str, exclude_id: int | None) -> None:
    query = select(PriceList.id).where(PriceList.name == name)
    if exclude_id is not None:
        query = query.where(PriceList.id != exclude_id)
    existing = await session.scalar(query)
    if existing is not None:
        raise Conflict(f"a price list named {name} exists", field="name", existing_id=existing)


async def _check_items(session: AsyncSession, items: list[PriceListItemIn]) -> None:
    """Each product once, and only products that exist."""
    seen: set[int] = set()
    for index, item in enumerate(items):
        field = f"items.{index}.product_id"
        if item.product_id in seen:
            raise Invalid("this product is already in the price list", field=field)
        seen.add(item.product_id)
        if await session.get(Product, item.product_id) is None:
            raise Invalid("no such product", field=field)


def _check_period(valid_from: date | None, valid_to: date | None) -> None:
    if valid_from is not None and valid_to is not None and valid_to < valid_from:
        raise Invalid("must not be before valid_from", field="valid_to")


async def _replace_items(
    session: AsyncSession, *, price_list_id: int, items: list[PriceListItemIn]
) -> None:
    await session.execute(delete(PriceListItem).where(PriceListItem.price_list_id == price_list_id))
    session.add_all(
        PriceListItem(price_list_id=price_list_id, **_to_fen(item.model_dump())) for item in items
    )
    await session.flush()


async def create_price_list(
    session: AsyncSession, *, actor: Actor, data: PriceListCreate
) -> PriceList:
    actor.require_role(Role.admin)
    _check_period(data.valid_from, data.valid_to)
    await _guard_name(session, name=data.name, exclude_id=None)
    await _check_items(session, data.items or [])
    price_list = PriceList(**data.model_dump(exclude={"items"}))
    session.add(price_list)
    await _flush_unique(session, field="name")
    await _replace_items(session, price_list_id=price_list.id, items=data.items or [])
    audit.record(
        session,
        actor=actor,
        action="create",
        entity=PRICE_LIST,
        entity_id=price_list.id,
        after=await _price_list_snapshot(session, price_list),
    )
    return price_list


async def update_price_list(
    session: AsyncSession, *, actor: Actor, price_list_id: int, data: PriceListUpdate
) -> PriceList:
    actor.require_role(Role.admin)
    price_list = await get_price_list(session, price_list_id=price_list_id)
    fields = data.model_dump(exclude_unset=True, exclude={"items"})
    _check_period(
        fields.get("valid_from", price_list.valid_from), fields.get("valid_to", price_list.valid_to)
    )
    if "name" in fields:
        await _guard_name(session, name=fields["name"], exclude_id=price_list.id)
    if data.items is not None:
        await _check_items(session, data.items)
    before = await _price_list_snapshot(session, price_list)
    for key, value in fields.items():
        setattr(price_list, key, value)
    price_list.updated_at = utcnow()
    await _flush_unique(session, field="name")
    if data.items is not None:
        await _replace_items(session, price_list_id=price_list.id, items=data.items)
    audit.record(
        session,
        actor=actor,
        action="update",
        entity=PRICE_LIST,
        entity_id=price_list.id,
        before=before,
        after=await _price_list_snapshot(session, price_list),
    )
    return price_list


async def deactivate_price_list(
    session: AsyncSession, *, actor: Actor, price_list_id: int
) -> PriceList:
    """Retire a price list: quotes priced from it keep their prices, new ones cannot use it."""
    return await update_price_list(
        session, actor=actor, price_list_id=price_list_id, data=PriceListUpdate(active=False)
    )


async def unit_price(
    session: AsyncSession, *, product: Product, price_list: PriceList | None
) -> Decimal:
    """The product's price in the price list when it lists the product, else its list price."""
    if price_list is not None:
        listed = await session.scalar(
            select(PriceListItem.unit_price).where(
                PriceListItem.price_list_id == price_list.id,
                PriceListItem.product_id == product.id,
            )
        )
        if listed is not None:
            return listed
    return product.list_price
