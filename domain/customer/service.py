"""Customer service functions: every write normalises, guards against duplicates and is audited."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, custom_field, normalize, timeline
from domain.access import Actor, Role, Scope
from domain.customer.models import Contact, Customer, CustomerTag, Kind, Stage
from domain.customer.schemas import (
    COMPANY_ONLY,
    PERSON_ONLY,
    ContactCreate,
    ContactRead,
    ContactUpdate,
    CustomerCreate,
    CustomerQuery,
    CustomerRead,
    CustomerUpdate,
    DuplicateMatch,
    Page,
)
from domain.db import utcnow
from domain.errors import Conflict, Forbidden, Invalid, NotFound
from domain.user import Team, User

ENTITY = "customer"
READ_ALL_ROLES = (Role.admin, Role.service_manager, Role.service)
TOTAL_CAP = 10_000
"""A search counts its matches up to this many; beyond, the total is a lower bound ("10,000+")."""
PAGE_FROM_IDS = 1_000
"""Up to this many matches, a search sorts its page from the matching ids it has read."""


def visible(actor: Actor) -> ColumnElement[bool]:
    """Which customers the actor may see: reps their own, managers their teams', admins all."""
    alive = Customer.deleted_at.is_(None)
    if actor.scopes is not None or actor.role in READ_ALL_ROLES:
        return alive
    if actor.role is Role.sales_manager:
        team = select(User.id).where(User.team_id.in_(actor.managed_team_ids))
        return and_(alive, or_(Customer.owner_id == actor.user_id, Customer.owner_id.in_(team)))
    if actor.role is Role.sales:
        return and_(alive, Customer.owner_id == actor.user_id)
    return false()


def _check_can_write(actor: Actor) -> None:
    actor.require_scope(Scope.customers_write)
    if actor.scopes is None and actor.role not in (Role.admin, Role.sales_manager, Role.sales):
        raise Forbidden("your role may not change customers")


async def get(session: AsyncSession, *, actor: Actor, customer_id: int) -> Customer:
    """The customer if the actor may see it; otherwise 404, so no existence leaks."""
    actor.require_scope(Scope.customers_read)
    customer = await session.scalar(
        select(Customer).where(Customer.id == customer_id, visible(actor))
    )
    if customer is None:
        survivor = await survivor_of(session, customer_id=customer_id)
        if survivor is not None and await session.scalar(
            select(Customer.id).where(Customer.id == survivor, visible(actor))
        ):
            raise NotFound(
                f"customer #{customer_id} was merged into #{survivor}",
                field="customer_id",
                merged_into=survivor,
            )
        raise NotFound("no such customer", field="customer_id")
    return customer


async def survivor_of(session: AsyncSession, *, customer_id: int) -> int | None:
    """The live customer that merges absorbed this one into (merges of merges followed), so an
    old link still finds it; None unless it was merged."""
    seen: set[int] = set()
    current = customer_id
    while current not in seen:
        seen.add(current)
        row = (
            await session.execute(
                select(Customer.merged_into_id, Customer.deleted_at).where(Customer.id == current)
            )
        ).first()
        if row is None:
            return None
        if row.merged_into_id is None:
            return current if current != customer_id and row.deleted_at is None else None
        current = row.merged_into_id
    return None


async def check_visible(
    session: AsyncSession, *, actor: Actor, customer_id: int, entity: str
) -> None:
    """NotFound naming `entity` (a deal, a quote …) unless the actor may see the customer it
    belongs to: what a customer's records show follows who may see the customer."""
    actor.require_scope(Scope.customers_read)
    seen = await session.scalar(
        select(Customer.id).where(Customer.id == customer_id, visible(actor))
    )
    if seen is None:
        raise NotFound(f"no such {entity}", field=f"{entity}_id")


async def get_for_update(session: AsyncSession, *, actor: Actor, customer_id: int) -> Customer:
    _check_can_write(actor)
    return await get(session, actor=actor, customer_id=customer_id)


def _normalised(kind: Kind, fields: dict[str, Any]) -> dict[str, Any]:
    """Apply the normalisation rules to whichever fields are present."""
    out = dict(fields)
    if "name" in out:
        out["name"] = (
            normalize.company_display_name(out["name"])
            if kind is Kind.company
            else normalize.person_name(out["name"])
        )
        out["name_key"] = (
            normalize.company_key(out["name"])
            if kind is Kind.company
            else normalize.person_name(out["name"]).lower()
        )
    for key, fn in (
        ("phone", normalize.phone),
        ("email", normalize.email),
        ("credit_code", normalize.credit_code),
        ("wechat_id", normalize.wechat_id),
    ):
        if out.get(key):
            out[key] = fn(out[key], field=key)
        elif key in out:
            out[key] = None
    if out.get("website"):
        out["website"] = normalize.url(out["website"], field="website", assume_scheme="http")
    for key in (
        "industry",
        "registered_address",
        "member_level",
        "province",
        "city",
        "source",
        "notes",
        "invoice_title",
        "billing_address",
        "billing_phone",
        "bank_name",
        "bank_account",
    ):
        if key in out:
            out[key] = normalize.text(out[key])
    return out


def _check_kind_fields(kind: Kind, fields: dict[str, Any]) -> None:
    other = PERSON_ONLY if kind is Kind.company else COMPANY_ONLY
    for key in other:
        if fields.get(key) is not None:
            raise Invalid(f"not a field of a {kind.value} customer", field=key)


async def _check_refs(
    session: AsyncSession, *, actor: Actor, fields: dict[str, Any], customer_id: int | None
) -> None:
    if fields.get("owner_id") is not None:
        await _check_owner(session, actor=actor, owner_id=fields["owner_id"])
    team_id = fields.get("service_team_id")
    if team_id is not None and await session.get(Team, team_id) is None:
        raise Invalid("no such team", field="service_team_id")
    if fields.get("referrer_id") is not None:
        if fields["referrer_id"] == customer_id:
            raise Invalid("a customer cannot refer itself", field="referrer_id")
        if await _alive(session, fields["referrer_id"]) is None:
            raise Invalid("no such customer", field="referrer_id")
    if fields.get("parent_id") is not None:
        await _check_parent(session, parent_id=fields["parent_id"], customer_id=customer_id)


async def _alive(session: AsyncSession, customer_id: int) -> Customer | None:
    return await session.scalar(
        select(Customer).where(Customer.id == customer_id, Customer.deleted_at.is_(None))
    )


async def _check_owner(session: AsyncSession, *, actor: Actor, owner_id: int) -> None:
    owner = await session.get(User, owner_id)
    if owner is None or not owner.active:
        raise Invalid("no such active user", field="owner_id")
    if actor.scopes is not None or actor.role is Role.admin:
        return
    if actor.role is Role.sales_manager and (
        owner_id == actor.user_id or owner.team_id in actor.managed_team_ids
    ):
        return
    if owner_id != actor.user_id:
        raise Forbidden("you may only give customers to yourself or your team", field="owner_id")


async def _check_parent(session: AsyncSession, *, parent_id: int, customer_id: int | None) -> None:
    """The parent must be a live company, and the group tree must stay a tree."""
    seen: set[int] = set()
    current: int | None = parent_id
    while current is not None:
        if current == customer_id or current in seen:
            raise Invalid("this parent would make the group tree a loop", field="parent_id")
        seen.add(current)
        node = await _alive(session, current)
        if node is None:
            raise Invalid("no such customer", field="parent_id")
        if current == parent_id and node.kind != Kind.company.value:
            raise Invalid("a parent must be a company customer", field="parent_id")
        current = node.parent_id


async def find_duplicates(
    session: AsyncSession,
    *,
    credit_code: str | None = None,
    phone: str | None = None,
    email: str | None = None,
    company_key: str | None = None,
    exclude_id: int | None = None,
) -> list[DuplicateMatch]:
    """Live customers sharing a key with these normalised values, strongest key first."""
    matches: list[DuplicateMatch] = []
    for field, column, value in (
        ("credit_code", Customer.credit_code, credit_code),
        ("phone", Customer.phone, phone),
        ("email", Customer.email, email),
        ("name", Customer.name_key, company_key),
    ):
        if not value:
            continue
        query = select(Customer.id, Customer.name).where(
            column == value, Customer.deleted_at.is_(None)
        )
        if field == "name":
            query = query.where(Customer.kind == Kind.company.value)
        if exclude_id is not None:
            query = query.where(Customer.id != exclude_id)
        for row in (await session.execute(query.order_by(Customer.id).limit(5))).all():
            if all(m.customer_id != row.id for m in matches):
                matches.append(DuplicateMatch(customer_id=row.id, field=field, name=row.name))
    return matches


async def _guard_duplicates(
    session: AsyncSession, *, kind: Kind, fields: dict[str, Any], exclude_id: int | None
) -> None:
    changed = {k: fields.get(k) for k in ("credit_code", "phone", "email")}
    if kind is Kind.company and "name_key" in fields:
        changed["company_key"] = fields["name_key"]
    matches = await find_duplicates(session, exclude_id=exclude_id, **changed)
    if matches:
        first = matches[0]
        raise Conflict(
            f"a customer with the same {first.field} exists: #{first.customer_id} {first.name}",
            field=first.field,
            existing_id=first.customer_id,
            matches=[m.model_dump() for m in matches],
        )


def _snapshot(customer: Customer) -> dict[str, Any]:
    return CustomerRead.model_validate(customer).model_dump(
        exclude={"id", "created_at", "updated_at", "average_order_value"}
    )


def clean_tags(tags: list[str]) -> list[str]:
    """Tags as every write stores them: trimmed, distinct, sorted, no empty ones."""
    return sorted({normalize.text(t) or "" for t in tags} - {""})


def _set_tags(customer: Customer, tags: list[str]) -> None:
    customer.tag_rows = [CustomerTag(tag=t) for t in clean_tags(tags)]


async def create(
    session: AsyncSession, *, actor: Actor, data: CustomerCreate, allow_duplicate: bool = False
) -> Customer:
    _check_can_write(actor)
    sent = data.model_dump(exclude={"kind", "tags", "custom"}, exclude_none=True)
    _check_kind_fields(data.kind, sent)
    fields = _normalised(data.kind, sent)
    if actor.scopes is None and actor.role is Role.sales and fields.get("owner_id") is None:
        fields["owner_id"] = actor.user_id
    await _check_refs(session, actor=actor, fields=fields, customer_id=None)
    if not allow_duplicate:
        await _guard_duplicates(session, kind=data.kind, fields=fields, exclude_id=None)
    customer = Customer(**fields, kind=data.kind.value)
    customer.custom = await custom_field.validate_values(
        session, entity=ENTITY, values=data.custom or {}
    )
    _set_tags(customer, data.tags or [])
    session.add(customer)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity=ENTITY,
        entity_id=customer.id,
        after=_snapshot(customer),
    )
    timeline.add(
        session,
        customer_id=customer.id,
        kind="customer.created",
        actor=actor,
        summary=customer.name,
        ref=(ENTITY, customer.id),
    )
    return customer


async def update(
    session: AsyncSession,
    *,
    actor: Actor,
    customer_id: int,
    data: CustomerUpdate,
    allow_duplicate: bool = False,
) -> Customer:
    customer = await get_for_update(session, actor=actor, customer_id=customer_id)
    kind = Kind(customer.kind)
    sent = data.model_dump(exclude_unset=True, exclude={"tags", "custom"})
    _check_kind_fields(kind, sent)
    fields = _normalised(kind, sent)
    await _check_refs(session, actor=actor, fields=fields, customer_id=customer.id)
    if not allow_duplicate:
        await _guard_duplicates(session, kind=kind, fields=fields, exclude_id=customer.id)
    before = _snapshot(customer)
    for key, value in fields.items():
        setattr(customer, key, value.value if hasattr(value, "value") else value)
    if data.custom is not None:
        customer.custom = await custom_field.validate_values(
            session, entity=ENTITY, values=data.custom, existing=customer.custom
        )
    if data.tags is not None:
        _set_tags(customer, data.tags)
    customer.updated_at = utcnow()
    await session.flush()
    after = _snapshot(customer)
    audit.record(
        session,
        actor=actor,
        action="update",
        entity=ENTITY,
        entity_id=customer.id,
        before=before,
        after=after,
    )
    for key in ("owner_id", "stage"):
        if before[key] != after[key]:
            timeline.add(
                session,
                customer_id=customer.id,
                kind=f"customer.{key}_changed",
                actor=actor,
                summary=f"{before[key]} → {after[key]}",
                detail={"before": before[key], "after": after[key]},
                ref=(ENTITY, customer.id),
            )
    return customer


async def delete(session: AsyncSession, *, actor: Actor, customer_id: int) -> None:
    """Archive: the record and its history stay for audit, but it leaves every list."""
    actor.require_role(Role.sales_manager)
    customer = await get_for_update(session, actor=actor, customer_id=customer_id)
    customer.deleted_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action="delete",
        entity=ENTITY,
        entity_id=customer.id,
        before=_snapshot(customer),
    )


def _search_clause(q: str) -> ColumnElement[bool]:
    """One box for everything: a phone, an email, a credit code or part of a name."""
    text = q.strip()
    digits = sum(ch.isdigit() for ch in text)
    if "@" in text:
        try:
            return Customer.email == normalize.email(text)
        except Invalid:
            pass
    if digits >= 7:
        try:
            return Customer.phone == normalize.phone(text)
        except Invalid:
            pass
    if len(text) == 18 and text.isalnum():
        try:
            return Customer.credit_code == normalize.credit_code(text)
        except Invalid:
            pass
    key = normalize.company_key(text) if text else ""
    clauses = [Customer.name.contains(text, autoescape=True)]
    if key:
        clauses.append(Customer.name_key.startswith(key, autoescape=True))
    return or_(*clauses)


async def _filters(
    session: AsyncSession, *, actor: Actor, query: CustomerQuery
) -> list[ColumnElement[bool]]:
    """Every filter but the tags, which `_tag_clauses` writes in two forms."""
    where: list[ColumnElement[bool]] = [visible(actor)]
    if query.q and query.q.strip():
        where.append(_search_clause(query.q))
    if query.kind:
        where.append(Customer.kind == query.kind.value)
    if query.phone:
        where.append(Customer.phone == normalize.phone(query.phone, field="phone"))
    if query.email:
        where.append(Customer.email == normalize.email(query.email, field="email"))
    if query.credit_code:
        where.append(
            Customer.credit_code == normalize.credit_code(query.credit_code, field="credit_code")
        )
    for column, value in (
        (Customer.owner_id, query.owner_id),
        (Customer.province, query.province),
        (Customer.city, query.city),
        (Customer.industry, query.industry),
        (Customer.source, query.source),
        (Customer.parent_id, query.parent_id),
    ):
        if value is not None:
            where.append(column == value)
    if query.stage:
        where.append(Customer.stage == query.stage.value)
    if query.custom:
        defs = {
            d.key: d
            for d in await custom_field.list_fields(session, entity=ENTITY, include_retired=True)
        }
        for key, value in query.custom.items():
            if key not in defs:
                raise Invalid("unknown custom field", field=f"custom.{key}")
            where.append(custom_field.filter_clause(Customer.custom, defs[key], value))
    return where


def _tag_clauses(tags: list[str], *, for_page: bool) -> list[ColumnElement[bool]]:
    """One clause per tag. Finding the matches reads the tag index (`id IN (…)`); the ordered
    page walks the sort order and probes the tag's primary key per row (`EXISTS`)."""
    if for_page:
        return [
            exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag == tag)
            for tag in tags
        ]
    return [
        Customer.id.in_(select(CustomerTag.customer_id).where(CustomerTag.tag == tag))
        for tag in tags
    ]


def _ordered(stmt: Select[Any], sort: str) -> Select[Any]:
    column = getattr(Customer, sort.lstrip("-"))
    if sort.startswith("-"):
        return stmt.order_by(column.desc(), Customer.id.desc())
    return stmt.order_by(column.asc(), Customer.id.asc())


async def search(
    session: AsyncSession, *, actor: Actor, query: CustomerQuery
) -> Page[CustomerRead]:
    """One page of the customers the actor may see that match every filter, in `query.sort`.

    Counting a million matches costs more than the page, so the total stops at TOTAL_CAP
    (`total_exact` false, shown as "10,000+"). The matching ids are read first, unordered and
    at most PAGE_FROM_IDS + 1 of them. When that is all of them, they are the exact total and
    the page is sorted from those rows alone, so an expensive filter (a name substring, which
    reads the whole table) runs once. Otherwise a count that stops at TOTAL_CAP + 1 gives the
    total and the page walks the sort order through the filters: with that many matches it
    soon has a page, and a long id list would cost more than it saves.
    """
    actor.require_scope(Scope.customers_read)
    where = await _filters(session, actor=actor, query=query)
    matching = select(Customer.id).where(*where, *_tag_clauses(query.tag, for_page=False))
    few = min(PAGE_FROM_IDS, TOTAL_CAP)
    hits = list(await session.scalars(matching.limit(few + 1)))
    page_where = [*where, *_tag_clauses(query.tag, for_page=True)]
    if len(hits) <= few:
        total = len(hits)
        # Integers rendered inline: SQLite before 3.32 allows only 999 bound parameters.
        page_where.append(
            Customer.id.in_(bindparam("hits", hits, expanding=True, literal_execute=True))
        )
    else:
        capped = matching.limit(TOTAL_CAP + 1).subquery()
        total = await session.scalar(select(func.count()).select_from(capped)) or 0
    rows = (
        await session.scalars(
            _ordered(select(Customer).where(*page_where), query.sort)
            .offset((query.page - 1) * query.size)
            .limit(query.size)
        )
        if total
        else []
    )
    return Page[CustomerRead](
        items=[CustomerRead.model_validate(c) for c in rows],
        total=min(total, TOTAL_CAP),
        total_exact=total <= TOTAL_CAP,
        page=query.page,
        size=query.size,
    )


async def listed(session: AsyncSession, *, actor: Actor, query: CustomerQuery) -> Select[Any]:
    """Every customer the list `query` describes, in its order and unpaged, for an export: the
    same filters and visibility as `search`, so an export never shows what the list would not."""
    actor.require_scope(Scope.customers_read)
    where = await _filters(session, actor=actor, query=query)
    return _ordered(
        select(Customer).where(*where, *_tag_clauses(query.tag, for_page=False)), query.sort
    )


async def children(session: AsyncSession, *, actor: Actor, customer_id: int) -> list[Customer]:
    """Subsidiaries the actor may see, for the group tree."""
    await get(session, actor=actor, customer_id=customer_id)
    rows = await session.scalars(
        select(Customer)
        .where(Customer.parent_id == customer_id, visible(actor))
        .order_by(Customer.name)
    )
    return list(rows.all())


async def record_purchase(
    session: AsyncSession, *, customer_id: int, on: date, amount: Decimal
) -> Customer:
    """Fold one purchase into the transaction summary; later lifecycles and imports call this."""
    customer = await _alive(session, customer_id)
    if customer is None:
        raise NotFound("no such customer", field="customer_id")
    if amount < 0:
        raise Invalid("a purchase amount cannot be negative", field="amount")
    customer.purchase_count += 1
    customer.total_amount = (customer.total_amount or Decimal("0")) + amount
    if customer.first_purchase_on is None or on < customer.first_purchase_on:
        customer.first_purchase_on = on
    if customer.last_purchase_on is None or on > customer.last_purchase_on:
        customer.last_purchase_on = on
    if customer.stage in (Stage.lead.value, Stage.prospect.value):
        customer.stage = Stage.customer.value
    return customer


# Contacts ---------------------------------------------------------------------------------

CONTACT = "contact"


def _contact_fields(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    if "name" in out:
        out["name"] = normalize.person_name(out["name"])
    for key, fn in (
        ("mobile", normalize.phone),
        ("phone", normalize.phone),
        ("email", normalize.email),
        ("wechat_id", normalize.wechat_id),
    ):
        if out.get(key):
            out[key] = fn(out[key], field=key)
        elif key in out:
            out[key] = None
    for key in ("title", "department"):
        if key in out:
            out[key] = normalize.text(out[key])
    return out


def _contact_snapshot(contact: Contact) -> dict[str, Any]:
    return ContactRead.model_validate(contact).model_dump(
        exclude={"id", "created_at", "updated_at"}
    )


async def _check_reports_to(
    session: AsyncSession, *, customer_id: int, contact_id: int | None, reports_to_id: int
) -> None:
    """Same customer, and the decision chain must not loop back on itself."""
    current: int | None = reports_to_id
    seen: set[int] = set()
    while current is not None:
        if current == contact_id or current in seen:
            raise Invalid("this would make the reporting line a loop", field="reports_to_id")
        seen.add(current)
        boss = await session.get(Contact, current)
        if boss is None or boss.customer_id != customer_id:
            raise Invalid("no such contact at this customer", field="reports_to_id")
        current = boss.reports_to_id


async def list_contacts(session: AsyncSession, *, actor: Actor, customer_id: int) -> list[Contact]:
    await get(session, actor=actor, customer_id=customer_id)
    rows = await session.scalars(
        select(Contact).where(Contact.customer_id == customer_id).order_by(Contact.id)
    )
    return list(rows.all())


async def get_contact(
    session: AsyncSession, *, actor: Actor, customer_id: int, contact_id: int
) -> Contact:
    await get(session, actor=actor, customer_id=customer_id)
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.customer_id != customer_id:
        raise NotFound("no such contact", field="contact_id")
    return contact


async def add_contact(
    session: AsyncSession, *, actor: Actor, customer_id: int, data: ContactCreate
) -> Contact:
    customer = await get_for_update(session, actor=actor, customer_id=customer_id)
    if customer.kind != Kind.company.value:
        raise Invalid("contacts belong to company customers", field="customer_id")
    fields = _contact_fields(data.model_dump(exclude={"custom"}, exclude_none=True))
    if fields.get("reports_to_id") is not None:
        await _check_reports_to(
            session, customer_id=customer_id, contact_id=None, reports_to_id=fields["reports_to_id"]
        )
    contact = Contact(**fields, customer_id=customer_id)
    contact.custom = await custom_field.validate_values(
        session, entity=CONTACT, values=data.custom or {}
    )
    session.add(contact)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="create",
        entity=CONTACT,
        entity_id=contact.id,
        after=_contact_snapshot(contact),
    )
    timeline.add(
        session,
        customer_id=customer_id,
        kind="contact.added",
        actor=actor,
        summary=contact.name,
        ref=(CONTACT, contact.id),
    )
    return contact


async def update_contact(
    session: AsyncSession, *, actor: Actor, customer_id: int, contact_id: int, data: ContactUpdate
) -> Contact:
    await get_for_update(session, actor=actor, customer_id=customer_id)
    contact = await get_contact(
        session, actor=actor, customer_id=customer_id, contact_id=contact_id
    )
    fields = _contact_fields(data.model_dump(exclude_unset=True, exclude={"custom"}))
    if fields.get("reports_to_id") is not None:
        await _check_reports_to(
            session,
            customer_id=customer_id,
            contact_id=contact.id,
            reports_to_id=fields["reports_to_id"],
        )
    before = _contact_snapshot(contact)
    for key, value in fields.items():
        setattr(contact, key, value.value if hasattr(value, "value") else value)
    if data.custom is not None:
        contact.custom = await custom_field.validate_values(
            session, entity=CONTACT, values=data.custom, existing=contact.custom
        )
    contact.updated_at = utcnow()
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="update",
        entity=CONTACT,
        entity_id=contact.id,
        before=before,
        after=_contact_snapshot(contact),
    )
    return contact


async def delete_contact(
    session: AsyncSession, *, actor: Actor, customer_id: int, contact_id: int
) -> None:
    await get_for_update(session, actor=actor, customer_id=customer_id)
    contact = await get_contact(
        session, actor=actor, customer_id=customer_id, contact_id=contact_id
    )
    before = _contact_snapshot(contact)
    await session.delete(contact)
    audit.record(
        session, actor=actor, action="delete", entity=CONTACT, entity_id=contact_id, before=before
    )
    timeline.add(
        session,
        customer_id=customer_id,
        kind="contact.removed",
        actor=actor,
        summary=before["name"],
        ref=(CONTACT, contact_id),
    )


# For imports, which check every cell with the same rules before writing in bulk ------------


def normalised(kind: Kind, fields: dict[str, Any]) -> dict[str, Any]:
    """The stored form of whichever customer fields are given, as every write stores them."""
    _check_kind_fields(kind, fields)
    return _normalised(kind, fields)


def contact_normalised(fields: dict[str, Any]) -> dict[str, Any]:
    """The stored form of whichever contact fields are given, as every write stores them."""
    return _contact_fields(fields)


def snapshot(customer: Customer) -> dict[str, Any]:
    """A customer's fields as the audit log records them."""
    return _snapshot(customer)


def set_tags(customer: Customer, tags: list[str]) -> None:
    """Replace a customer's tags, cleaned as every write cleans them."""
    _set_tags(customer, tags)
