"""Which transition is allowed from which state, and who may ask for it. Pure: the workflow's
update validators run it on workflow state alone, so a refusal never touches the database."""

from __future__ import annotations

from domain.access import Role
from domain.lead.schemas import Caller
from domain.ticket.lifecycle import Action, Ownership
from domain.ticket.models import TicketStatus

WORKING = frozenset(
    {TicketStatus.assigned, TicketStatus.in_progress, TicketStatus.waiting_on_customer}
)

ALLOWED_FROM: dict[Action, frozenset[TicketStatus]] = {
    Action.start: frozenset({TicketStatus.assigned}),
    Action.reply: WORKING | {TicketStatus.new},
    Action.wait: frozenset({TicketStatus.assigned, TicketStatus.in_progress}),
    Action.resolve: WORKING,
    Action.reopen: frozenset({TicketStatus.resolved}),
    Action.close: frozenset({TicketStatus.resolved}),
    Action.reassign: WORKING | {TicketStatus.new},
}


class Refused(Exception):
    """The transition is not allowed; `conflict` says whether it is the state (409) or the
    caller (403)."""

    def __init__(self, message: str, *, conflict: bool) -> None:
        super().__init__(message)
        self.conflict = conflict


def supervises(caller: Caller, ownership: Ownership) -> bool:
    """Admins, and service managers of the ticket's team (any, for a ticket without one)."""
    return caller.role == Role.admin or (
        caller.role == Role.service_manager
        and (ownership.team_id is None or ownership.team_id in caller.managed_team_ids)
    )


def check(action: Action, status: TicketStatus, caller: Caller, ownership: Ownership) -> None:
    """Raise Refused unless `caller` may do `action` on a ticket in `status` owned as given."""
    if status not in ALLOWED_FROM[action]:
        raise Refused(f"cannot {action.value} a ticket that is {status.value}", conflict=True)
    if action is Action.reassign:
        if not supervises(caller, ownership):
            raise Refused("only the team's supervisor may reassign a ticket", conflict=False)
        return
    is_assignee = caller.user_id is not None and caller.user_id == ownership.assignee_id
    if not (is_assignee or supervises(caller, ownership)):
        raise Refused("only the ticket's assignee or their supervisor may do this", conflict=False)
