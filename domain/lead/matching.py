"""Who is this enquiry? Exact keys first (credit code, phone, email), then similar company names."""

from __future__ import annotations

from rapidfuzz import fuzz, process
from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.customer import Contact, Customer, Kind
from domain.lead.models import OPEN_STATUSES, Lead
from domain.lead.schemas import LeadMatch

FUZZY_CANDIDATES = 500
"""Company names compared per enquiry, found by their first characters through the index."""


async def open_lead(
    session: AsyncSession, *, phone: str | None, email: str | None, wechat_id: str | None
) -> Lead | None:
    """An open lead for the same person: a second enquiry joins it instead of starting another."""
    keys = [
        col == value
        for col, value in ((Lead.phone, phone), (Lead.email, email), (Lead.wechat_id, wechat_id))
        if value
    ]
    if not keys:
        return None
    return await session.scalar(
        select(Lead)
        .where(or_(*keys), Lead.status.in_([s.value for s in OPEN_STATUSES]))
        .order_by(Lead.id)
        .limit(1)
    )


async def customers(
    session: AsyncSession,
    *,
    credit_code: str | None,
    phone: str | None,
    email: str | None,
    company_key: str | None,
    fuzzy_threshold: float,
) -> list[LeadMatch]:
    """Existing customers and contacts this enquiry belongs to, strongest evidence first."""
    matches: list[LeadMatch] = []
    alive = Customer.deleted_at.is_(None)
    for field, column, value in (
        ("credit_code", Customer.credit_code, credit_code),
        ("phone", Customer.phone, phone),
        ("email", Customer.email, email),
    ):
        if value:
            found = await session.scalar(
                select(Customer.id).where(column == value, alive).order_by(Customer.id).limit(1)
            )
            if found is not None:
                matches.append(
                    LeadMatch(kind="customer", id=found, field=field, detail=f"same {field}")
                )
    for field, column, value in (("phone", Contact.mobile, phone), ("email", Contact.email, email)):
        if value:
            row = (
                await session.execute(
                    select(Contact.id, Contact.customer_id)
                    .join(Customer)
                    .where(column == value, alive)
                    .order_by(Contact.id)
                    .limit(1)
                )
            ).first()
            if row is not None:
                matches.append(
                    LeadMatch(
                        kind="contact",
                        id=row.id,
                        field=field,
                        detail=f"same {field} as a contact of #{row.customer_id}",
                    )
                )
    if company_key:
        matches.extend(await _similar_company(session, company_key, fuzzy_threshold))
    return matches


async def _similar_company(session: AsyncSession, key: str, threshold: float) -> list[LeadMatch]:
    prefix = key[:2]
    rows = (
        await session.execute(
            select(Customer.id, Customer.name_key)
            .where(
                Customer.kind == Kind.company.value,
                Customer.deleted_at.is_(None),
                Customer.name_key.startswith(prefix, autoescape=True),
            )
            .limit(FUZZY_CANDIDATES)
        )
    ).all()
    best = process.extractOne(
        key, {r.id: r.name_key for r in rows}, scorer=fuzz.ratio, score_cutoff=threshold
    )
    if best is None:
        return []
    _name, score, customer_id = best
    return [
        LeadMatch(
            kind="customer",
            id=customer_id,
            field="company",
            score=round(score, 1),
            detail=f"company name {score:.0f}% similar",
        )
    ]
