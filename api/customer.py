"""Customer profile routes: list and search, the record, contacts, timeline and history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api import erp
from api.deps import CurrentActor, RecordId, SessionDep
from domain import audit, customer, timeline
from domain.access import Role

router = APIRouter(prefix="/api/customers", tags=["customers"])

AllowDuplicate = Annotated[
    bool, Query(description="Create or save even though a likely duplicate exists")
]


def custom_filters(request: Request) -> dict[str, str]:
    return {
        name.removeprefix("cf."): value
        for name, value in request.query_params.items()
        if name.startswith("cf.")
    }


@router.get("")
async def list_customers(
    request: Request,
    query: Annotated[customer.CustomerQuery, Query()],
    actor: CurrentActor,
    session: SessionDep,
) -> customer.Page[customer.CustomerRead]:
    """Filters combine with AND; custom fields filter as `cf.<key>=value`."""
    query = query.model_copy(update={"custom": custom_filters(request)})
    return await customer.search(session, actor=actor, query=query)


@router.post("", status_code=201)
async def create_customer(
    data: customer.CustomerCreate,
    actor: CurrentActor,
    session: SessionDep,
    allow_duplicate: AllowDuplicate = False,
) -> customer.CustomerRead:
    row = await customer.create(session, actor=actor, data=data, allow_duplicate=allow_duplicate)
    return customer.CustomerRead.model_validate(row)


@router.get("/{customer_id}")
async def get_customer(
    customer_id: RecordId, actor: CurrentActor, session: SessionDep
) -> customer.CustomerRead:
    row = await customer.get(session, actor=actor, customer_id=customer_id)
    return customer.CustomerRead.model_validate(row)


@router.patch("/{customer_id}")
async def update_customer(
    customer_id: RecordId,
    data: customer.CustomerUpdate,
    actor: CurrentActor,
    session: SessionDep,
    request: Request,
    allow_duplicate: AllowDuplicate = False,
) -> customer.CustomerRead:
    row = await customer.update(
        session, actor=actor, customer_id=customer_id, data=data, allow_duplicate=allow_duplicate
    )
    if data.model_fields_set & erp.CUSTOMER_FIELDS:
        await erp.push_customer(session, request, customer_id=customer_id)
    return customer.CustomerRead.model_validate(row)


@router.delete("/{customer_id}", status_code=204)
async def delete_customer(
    customer_id: RecordId, actor: CurrentActor, session: SessionDep
) -> Response:
    await customer.delete(session, actor=actor, customer_id=customer_id)
    return Response(status_code=204)


@router.get("/{customer_id}/children")
async def list_children(
    customer_id: RecordId, actor: CurrentActor, session: SessionDep
) -> list[customer.CustomerRead]:
    rows = await customer.children(session, actor=actor, customer_id=customer_id)
    return [customer.CustomerRead.model_validate(r) for r in rows]


@router.get("/{customer_id}/timeline")
async def get_timeline(
    customer_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    size: Annotated[int, Query(ge=1, le=200)] = 50,
    kind: Annotated[str | None, Query(max_length=40, description="e.g. follow_up")] = None,
) -> timeline.TimelinePage:
    await customer.get(session, actor=actor, customer_id=customer_id)
    return await timeline.page(
        session, customer_id=customer_id, page=page, size=size, kind_prefix=kind
    )


@router.get("/{customer_id}/history")
async def get_history(
    customer_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> list[audit.AuditRead]:
    """The audit trail of this record, for managers and admins."""
    actor.require_role(Role.sales_manager)
    await customer.get(session, actor=actor, customer_id=customer_id)
    rows = await audit.history(
        session, entity="customer", entity_id=customer_id, before_id=before_id
    )
    return [audit.AuditRead.model_validate(r) for r in rows]


@router.get("/{customer_id}/contacts")
async def list_contacts(
    customer_id: RecordId, actor: CurrentActor, session: SessionDep
) -> list[customer.ContactRead]:
    rows = await customer.list_contacts(session, actor=actor, customer_id=customer_id)
    return [customer.ContactRead.model_validate(r) for r in rows]


@router.post("/{customer_id}/contacts", status_code=201)
async def add_contact(
    customer_id: RecordId,
    data: customer.ContactCreate,
    actor: CurrentActor,
    session: SessionDep,
    request: Request,
) -> customer.ContactRead:
    row = await customer.add_contact(session, actor=actor, customer_id=customer_id, data=data)
    await erp.push_customer(session, request, customer_id=customer_id)
    return customer.ContactRead.model_validate(row)


@router.patch("/{customer_id}/contacts/{contact_id}")
async def update_contact(
    customer_id: RecordId,
    contact_id: RecordId,
    data: customer.ContactUpdate,
    actor: CurrentActor,
    session: SessionDep,
    request: Request,
) -> customer.ContactRead:
    row = await customer.update_contact(
        session, actor=actor, customer_id=customer_id, contact_id=contact_id, data=data
    )
    await erp.push_customer(session, request, customer_id=customer_id)
    return customer.ContactRead.model_validate(row)


@router.delete("/{customer_id}/contacts/{contact_id}", status_code=204)
async def delete_contact(
    customer_id: RecordId,
    contact_id: RecordId,
    actor: CurrentActor,
    session: SessionDep,
    request: Request,
) -> Response:
    await customer.delete_contact(
        session, actor=actor, customer_id=customer_id, contact_id=contact_id
    )
    await erp.push_customer(session, request, customer_id=customer_id)
    return Response(status_code=204)
