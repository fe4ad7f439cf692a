"""Lead rows: judged by the lead intake's own schema and normalisers, written by its `create`
(customer matching, scoring, audit, timeline), so an imported lead is what a captured one is.

A row is a new lead, whose workflow the import starts once it is written (assignment and the
first-contact SLA, exactly as after a capture), or a closed one — disqualified with one of the
lead policy's reasons — which gets no workflow: nobody is to be chased about an enquiry that
ended long ago. A row is the lead already stored (whatever its status) with the same phone,
email or WeChat ID, so importing a list twice creates nothing the second time.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.access import Actor
from domain.errors import Invalid
from domain.imports.reading import Cell
from domain.imports.rows import (
    Checked,
    Context,
    Problem,
    custom_values,
    each_field,
    problem_of,
    quoted,
    row_payload,
    validated,
)
from domain.lead import service as lead_service
from domain.lead.models import LeadStatus
from domain.lead.schemas import LeadCreate

KEYS = ("phone", "email", "wechat_id")
IMPORTABLE = (LeadStatus.new.value, LeadStatus.disqualified.value)


def _status(
    ctx: Context, row: int, raw: dict[str, Cell], status: str, reason: str | None,
    problems: list[Problem],
) -> str | None:
    """The disqualify reason of a closed lead (None for a new one); problems when they clash."""
    if status not in IMPORTABLE:
        problems.append(Problem(
            row, ctx.header("status"), quoted(raw.get("status")),
            "a lead is imported as new (its workflow starts) or disqualified (closed); "
            "import converted ones as customers",
        ))
        return None
    if status == LeadStatus.new.value:
        if reason:
            problems.append(Problem(row, ctx.header("disqualify_reason"), quoted(reason),
                                    "only a disqualified lead has a disqualify reason"))
        return None
    allowed = ", ".join(ctx.disqualify_reasons)
    if not reason:
        problems.append(Problem(row, ctx.header("disqualify_reason") or ctx.header("status"),
                                None, f"a disqualified lead needs its reason: one of {allowed}"))
    elif reason not in ctx.disqualify_reasons:
        problems.append(Problem(row, ctx.header("disqualify_reason"), quoted(reason),
                                f"{reason} is not a disqualify reason; choose from: {allowed}"))
    return reason


async def check(session: AsyncSession, ctx: Context, row: int, raw: dict[str, Cell]) -> Checked:
    problems: list[Problem] = []
    payload = row_payload(ctx, row, raw, problems)
    reason = _status(ctx, row, raw, payload.pop("status", LeadStatus.new.value),
                     payload.pop("disqualify_reason", None), problems)
    checked = Checked(row, problems=problems)
    data: LeadCreate | None = validated(LeadCreate, ctx, row, payload, raw, problems)
    if data is None:
        return checked
    sent = data.model_dump(exclude={"custom"}, exclude_none=True)
    fields = each_field(lead_service.normalised, sent, ctx, row, raw, problems)
    custom = await custom_values(session, ctx, row, data.custom or {}, raw, problems)
    if fields is not None:
        try:
            lead_service.check_reachable(fields)
        except Invalid as exc:
            problems.append(problem_of(ctx, row, exc, raw))
    if fields is None or problems:
        return checked
    checked.record = {**fields, "disqualify_reason": reason}
    checked.custom = custom
    checked.keys = [(k, fields[k]) for k in KEYS if fields.get(k)]
    return checked


async def write(
    session: AsyncSession, *, actor: Actor, checked: Checked, customer_id: int | None,
    import_id: int, fuzzy_threshold: float,
) -> int:
    """The lead, matched to its customer as intake matches; its id."""
    assert checked.record is not None
    fields = dict(checked.record)
    reason = fields.pop("disqualify_reason")
    lead, _matches = await lead_service.create(
        session, actor=actor, fields=fields, custom=checked.custom,
        fuzzy_threshold=fuzzy_threshold, disqualify_reason=reason,
        note={"import_id": import_id, "row": checked.row},
    )
    return lead.id
