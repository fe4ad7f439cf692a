"""Which transition is allowed from which state, and who may ask for it. Pure: the workflow's
update validators run it on workflow state alone, so a refusal never touches the database."""

from __future__ import annotations

from domain.access import Role
from domain.lead.lifecycle import Action, Ownership
from domain.lead.models import LeadStatus
from domain.lead.schemas import Caller

ALLOWED_FROM: dict[Action, frozenset[LeadStatus]] = {
    Action.contact: frozenset({LeadStatus.assigned, LeadStatus.contacted, LeadStatus.qualified}),
    Action.qualify: frozenset({LeadStatus.contacted}),
    Action.disqualify: frozenset(
        {LeadStatus.assigned, LeadStatus.contacted, LeadStatus.qualified, LeadStatus.pooled}
    ),
    Action.convert: frozenset({LeadStatus.qualified}),
    Action.reassign: frozenset(
        {LeadStatus.assigned, LeadStatus.contacted, LeadStatus.qualified, LeadStatus.pooled}
    ),
    Action.claim: frozenset({LeadStatus.pooled}),
}

TERMINAL = frozenset({LeadStatus.converted, LeadStatus.disqualified})


class Refused(Exception):
    """The transition is not allowed; `conflict` says whether it is the state (409) or the
    caller (403)."""

    def __init__(self, message: str, *, conflict: bool) -> None:
        super().__init__(message)
        self.conflict = conflict


def _manages_owner(caller: Caller, ownership: Ownership) -> bool:
    return caller.role == Role.admin or (
        caller.role == Role.sales_manager
        and (ownership.team_id in caller.managed_team_ids or ownership.owner_id is None)
    )


def check(action: Action, status: LeadStatus, caller: Caller, ownership: Ownership) -> None:
    """Raise Refused unless `caller` may do `action` on a lead in `status` owned as given."""
    if status not in ALLOWED_FROM[action]:
        raise Refused(f"cannot {action.value} a lead that is {status.value}", conflict=True)
    is_owner = caller.user_id is not None and caller.user_id == ownership.owner_id
    if action is Action.claim:
        if caller.role not in (Role.sales, Role.sales_manager):
            raise Refused("only sales people claim leads from the pool", conflict=False)
        return
    if action is Action.reassign or status is LeadStatus.pooled:
        if not _manages_owner(caller, ownership):
            raise Refused("only the owner's manager may do this", conflict=False)
        return
    if not (is_owner or _manages_owner(caller, ownership)):
        raise Refused("only the lead's owner or their manager may do this", conflict=False)
