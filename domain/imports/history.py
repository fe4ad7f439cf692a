"""History rows: past follow-ups and past purchases of customers already in Dossier.

Each row names its customer by credit code, phone or name (strongest given first), is judged by
the follow-up's or the purchase's own schema and rules, and is written by their own service
(`follow_up.log_imported`, `purchase.record`, which folds the purchase into the customer's
transaction summary). History never changes once stored: a row that is already there — the same
follow-up (customer, moment, kind, summary) or purchase (customer, order number, or date, amount
and product without one) — is skipped whatever the merge strategy, so a re-import adds nothing
and a purchase is counted in the summary exactly once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from domain import follow_up, normalize, purchase
from domain.access import Actor
from domain.errors import Invalid
from domain.follow_up import FollowUpCreate
from domain.imports.reading import Cell, is_blank
from domain.imports.rows import Checked, Context, Problem, problem_of, row_payload, validated
from domain.purchase import PurchaseCreate

CUSTOMER_FIELDS = ("customer", "customer_credit_code", "customer_phone")


def event_key(at: datetime, kind: str, summary: str) -> str:
    """What makes two follow-ups of one customer the same one."""
    return f"{at.astimezone(UTC).isoformat()}|{kind}|{summary}"


def _customer_ref(
    ctx: Context, row: int, raw: dict[str, Cell], payload: dict[str, object],
    problems: list[Problem],
) -> tuple[str, str] | None:
    """("credit_code" | "phone" | "name", value): how the row names its customer."""
    name, code, phone = (payload.pop(k, None) for k in CUSTOMER_FIELDS)
    try:
        if code:
            return ("credit_code", normalize.credit_code(str(code), field="customer_credit_code"))
        if phone:
            return ("phone", normalize.phone(str(phone), field="customer_phone"))
        if name:
            return ("name", normalize.person_name(str(name), field="customer"))
    except Invalid as exc:
        problems.append(problem_of(ctx, row, exc, raw))
        return None
    problems.append(Problem(row, ctx.header("customer"), None,
                            "name the customer: its name, credit code or phone"))
    return None


async def check_follow_up(
    session: AsyncSession, ctx: Context, row: int, raw: dict[str, Cell]
) -> Checked:
    problems: list[Problem] = []
    payload = row_payload(ctx, row, raw, problems)
    checked = Checked(row, problems=problems)
    checked.customer_ref = _customer_ref(ctx, row, raw, payload, problems)
    author_id = payload.pop("author_id", None)
    dated = "at" in payload  # FollowUpCreate would take "now": history needs its own date
    if not dated and is_blank(raw.get("at")):
        problems.append(Problem(row, ctx.header("at"), None, "give the date it happened"))
    data: FollowUpCreate | None = validated(FollowUpCreate, ctx, row, payload, raw, problems)
    if data is None or not dated:
        return checked
    try:
        fields = follow_up.checked_fields(data)
    except Invalid as exc:
        problems.append(problem_of(ctx, row, exc, raw))
        return checked
    if problems:
        return checked
    checked.record = {**fields, "author_id": author_id}
    checked.keys = [("event", event_key(fields["at"], fields["kind"], fields["summary"]))]
    return checked


async def check_purchase(
    session: AsyncSession, ctx: Context, row: int, raw: dict[str, Cell]
) -> Checked:
    problems: list[Problem] = []
    payload = row_payload(ctx, row, raw, problems)
    checked = Checked(row, problems=problems)
    checked.customer_ref = _customer_ref(ctx, row, raw, payload, problems)
    data: PurchaseCreate | None = validated(PurchaseCreate, ctx, row, payload, raw, problems)
    if data is None or problems:
        return checked
    fields = purchase.fields_of(data)
    checked.record = fields
    checked.keys = [("reference", str(fields["reference"]))]
    return checked


async def write_follow_up(
    session: AsyncSession, *, actor: Actor, checked: Checked, customer_id: int | None,
    import_id: int, fuzzy_threshold: float,
) -> int:
    assert checked.record is not None and customer_id is not None
    fields = dict(checked.record)
    author_id = fields.pop("author_id")
    row = await follow_up.log_imported(
        session, actor=actor, customer_id=customer_id, author_id=author_id, fields=fields,
        note={"import_id": import_id, "row": checked.row},
    )
    return row.id


async def write_purchase(
    session: AsyncSession, *, actor: Actor, checked: Checked, customer_id: int | None,
    import_id: int, fuzzy_threshold: float,
) -> int:
    assert checked.record is not None and customer_id is not None
    row = await purchase.record(
        session, actor=actor, customer_id=customer_id, fields=checked.record,
        import_id=import_id, note={"import_id": import_id, "row": checked.row},
    )
    return row.id
