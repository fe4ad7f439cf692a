"""Dispatch (派单): which team and agent a ticket goes to, by policy rules.

`choose` is pure over plain data (the ticket's facts, the agents per team, round-robin cursors)
and reuses the lead assignment strategies (domain.assignment.pick); `dispatch` is the thin DB
wrapper the ticket activities call. Candidates carry their open tickets in `open_leads`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import assignment
from domain.access import Role
from domain.assignment import Candidate, Strategy
from domain.customer import Customer
from domain.ticket.models import OPEN_STATUSES, Ticket
from domain.ticket.rules import DispatchPolicy, DispatchRule, DispatchStrategy, TicketFacts, fold
from domain.user import User

CUSTOMER_TEAM = "customer service team"
CURSOR_PREFIX = "ticket:"
"""Round-robin cursors share the lead assignment table, under names of their own."""


class Agent(BaseModel):
    candidate: Candidate
    skills: frozenset[str] = frozenset()


class Dispatched(BaseModel):
    team_id: int
    user_id: int | None
    rule: str


def _rules(
    policy: DispatchPolicy, facts: TicketFacts, service_team_id: int | None
) -> list[DispatchRule]:
    rules = [r for r in policy.rules if r.conditions.matches(facts)]
    if service_team_id is not None:
        rules.append(DispatchRule(name=CUSTOMER_TEAM, team_id=service_team_id))
    if policy.default is not None:
        rules.append(policy.default)
    return rules


def _wanted(rule: DispatchRule, facts: TicketFacts) -> set[str]:
    wanted = rule.skills or tuple(v for v in (facts.product, facts.type) if v)
    return {f for f in (fold(w) for w in wanted) if f}


def choose(
    policy: DispatchPolicy,
    facts: TicketFacts,
    agents: Mapping[int, Sequence[Agent]],
    *,
    cursor: Mapping[str, int | None],
    exclude: AbstractSet[int] = frozenset(),
    service_team_id: int | None = None,
) -> Dispatched | None:
    """The first matching rule whose team has an available agent wins; a rule whose team has
    nobody available passes the ticket on. When no team has anyone, the first matching team
    still gets the ticket, unassigned, for its supervisor to hand out."""
    rules = _rules(policy, facts, service_team_id)
    for rule in rules:
        available = sorted(
            (
                a
                for a in agents.get(rule.team_id, ())
                if assignment.eligible(a.candidate, exclude=exclude, open_lead_cap=10**9)
            ),
            key=lambda a: a.candidate.user_id,
        )
        if not available:
            continue
        strategy = Strategy.least_open
        if rule.strategy is DispatchStrategy.skills:
            wanted = _wanted(rule, facts)
            best = max(len(wanted & a.skills) for a in available)
            available = [a for a in available if len(wanted & a.skills) == best]
        elif rule.strategy is DispatchStrategy.round_robin:
            strategy = Strategy.round_robin
        order = assignment.round_robin_order(
            [a.candidate for a in available], cursor.get(CURSOR_PREFIX + rule.name)
        )
        winner = assignment.pick(strategy, order)
        return Dispatched(team_id=rule.team_id, user_id=winner.user_id, rule=rule.name)
    if rules:
        return Dispatched(team_id=rules[0].team_id, user_id=None, rule=rules[0].name)
    return None


async def open_ticket_counts(session: AsyncSession, user_ids: AbstractSet[int]) -> dict[int, int]:
    counts = dict.fromkeys(user_ids, 0)
    if user_ids:
        rows = await session.execute(
            select(Ticket.assignee_id, func.count())
            .where(
                Ticket.assignee_id.in_(sorted(user_ids)),
                Ticket.status.in_(sorted(s.value for s in OPEN_STATUSES)),
            )
            .group_by(Ticket.assignee_id)
        )
        counts.update({user_id: count for user_id, count in rows})
    return counts


async def agents_of(session: AsyncSession, team_ids: AbstractSet[int]) -> dict[int, list[Agent]]:
    """Service agents and supervisors of these teams, with their open tickets and skills."""
    users = (
        await session.scalars(
            select(User)
            .where(
                User.team_id.in_(sorted(team_ids)),
                User.role.in_([Role.service.value, Role.service_manager.value]),
            )
            .order_by(User.id)
        )
    ).all()
    counts = await open_ticket_counts(session, {u.id for u in users})
    result: dict[int, list[Agent]] = {t: [] for t in team_ids}
    for u in users:
        assert u.team_id is not None
        result[u.team_id].append(
            Agent(
                candidate=Candidate(
                    user_id=u.id,
                    team_id=u.team_id,
                    open_leads=counts[u.id],
                    active=u.active,
                    on_leave=u.on_leave,
                ),
                skills=frozenset(f for f in (fold(s) for s in u.skills or []) if f),
            )
        )
    return result


async def dispatch(
    session: AsyncSession,
    *,
    ticket: Ticket,
    policy: DispatchPolicy,
    exclude: AbstractSet[int] = frozenset(),
) -> Dispatched | None:
    """Choose team and agent for `ticket` and move the winning rule's cursor (not the ticket)."""
    customer = await session.get(Customer, ticket.customer_id) if ticket.customer_id else None
    facts = TicketFacts(
        type=ticket.type,
        priority=ticket.priority,
        channel=ticket.channel,
        product=ticket.product,
        customer_tier=customer.tier if customer else None,
    )
    service_team_id = customer.service_team_id if customer else None
    rules = _rules(policy, facts, service_team_id)
    names = [CURSOR_PREFIX + r.name for r in rules]
    cursor = await assignment.cursors(session, names=names)
    agents = await agents_of(session, {r.team_id for r in rules})
    chosen = choose(
        policy, facts, agents, cursor=cursor, exclude=exclude, service_team_id=service_team_id
    )
    if chosen is not None and chosen.user_id is not None:
        await assignment.advance(session, rule=CURSOR_PREFIX + chosen.rule, user_id=chosen.user_id)
    return chosen
