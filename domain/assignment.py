"""Assignment rules (线索分配规则): who gets a new lead, as versioned policy data.

An `AssignmentPolicy` is an ordered list of rules plus an optional default rule. Each rule has
conditions on the lead (source, campaign, province, city, industry, product interest, score,
customer tier) and a target: one user, or a team with a strategy to pick a member (round
robin, least open leads, weighted).

The decision itself, `choose`, is a pure function over plain data (the lead's facts, the
candidates per target, the round-robin cursors), so it is tested exhaustively without a
database and could run in workflow code. `assign` is the thin DB wrapper the lead activities
call: it loads the candidates and cursors, calls `choose` and moves the winning rule's cursor.
It never writes the lead; the caller does, and records `Choice.rule` on it.
"""

from __future__ import annotations

import bisect
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from domain.customer import Customer
from domain.customer.models import tier_of
from domain.db import utcnow
from domain.lead.models import AssignmentCursor, Lead, LeadStatus
from domain.schema import DbId
from domain.user import User

__all__ = [
    "COUNTED_STATUSES",
    "AssignmentPolicy",
    "AssignmentRule",
    "Candidate",
    "CandidateSource",
    "Choice",
    "Conditions",
    "LeadFacts",
    "Strategy",
    "Target",
    "advance",
    "assign",
    "choose",
    "cursors",
    "eligible",
    "facts_of",
    "load_candidates",
    "matching_rules",
    "open_lead_count",
    "open_lead_counts",
    "pick",
    "round_robin_order",
]

COUNTED_STATUSES = frozenset({LeadStatus.assigned, LeadStatus.contacted, LeadStatus.qualified})
"""Leads a rep owns and works: what the open-lead cap and `least_open` count.

Narrower than `OPEN_STATUSES`: a new lead has no owner yet and a pooled one belongs to nobody.
"""

MAX_RULES = 200
MAX_VALUES = 500
MAX_WEIGHT = 1000

RuleName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
"""At most 100 characters: the name keys the rule's row in `assignment_cursors`."""
Value = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Values = Annotated[tuple[Value, ...], Field(max_length=MAX_VALUES)]
Score = Annotated[int, Field(ge=-1_000_000_000, le=1_000_000_000)]
Weight = Annotated[int, Field(ge=1, le=MAX_WEIGHT)]


def _fold(value: str) -> str:
    """Compare as people mean it: "Ｗｅｂ  Form" is "web form" (NFKC, case-fold, spaces)."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


class _Data(BaseModel):
    """Frozen and strict about unknown keys: published as JSON, passed through Temporal."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Strategy(StrEnum):
    round_robin = "round_robin"
    least_open = "least_open"
    weighted = "weighted"


class LeadFacts(_Data):
    """What the rules look at, taken from the lead (and the tier of its matched customer)."""

    source: str | None = None
    campaign: str | None = None
    province: str | None = None
    city: str | None = None
    industry: str | None = None
    product_interest: str | None = None
    score: int = 0
    customer_tier: str | None = None


_FACT_OF_CONDITION = {
    "sources": "source",
    "campaigns": "campaign",
    "provinces": "province",
    "cities": "city",
    "industries": "industry",
    "product_interests": "product_interest",
    "customer_tiers": "customer_tier",
}


class Conditions(_Data):
    """All given conditions must hold; an empty list (or null) places no condition.

    A list matches when the lead's value equals one of its entries, compared case-, width- and
    space-insensitively. A lead without that value (no city, no matched customer for a tier
    condition) does not match a non-empty list. Scores are inclusive bounds.
    """

    sources: Values = ()
    campaigns: Values = ()
    provinces: Values = ()
    cities: Values = ()
    industries: Values = ()
    product_interests: Values = ()
    customer_tiers: Values = ()
    min_score: Score | None = None
    max_score: Score | None = None

    @field_validator(*_FACT_OF_CONDITION, mode="before")
    @classmethod
    def _null_is_any(cls, value: Any) -> Any:
        return () if value is None else value

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if (
            self.min_score is not None
            and self.max_score is not None
            and self.min_score > self.max_score
        ):
            raise ValueError("min_score must not be greater than max_score")
        return self

    @property
    def empty(self) -> bool:
        return self == Conditions()

    def matches(self, facts: LeadFacts) -> bool:
        for condition, fact in _FACT_OF_CONDITION.items():
            allowed: tuple[str, ...] = getattr(self, condition)
            if not allowed:
                continue
            value: str | None = getattr(facts, fact)
            if value is None or _fold(value) not in {_fold(a) for a in allowed}:
                return False
        if self.min_score is not None and facts.score < self.min_score:
            return False
        return self.max_score is None or facts.score <= self.max_score


class Target(_Data):
    """Who a rule gives its leads to: exactly one of a user or a team."""

    user_id: DbId | None = None
    team_id: DbId | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.user_id is None) == (self.team_id is None):
            raise ValueError("give exactly one of user_id or team_id")
        return self

    def includes(self, candidate: Candidate) -> bool:
        if self.user_id is not None:
            return candidate.user_id == self.user_id
        return candidate.team_id == self.team_id


class AssignmentRule(_Data):
    name: RuleName
    conditions: Conditions = Conditions()
    target: Target
    strategy: Strategy = Strategy.round_robin
    weights: dict[DbId, Weight] = Field(default_factory=dict, max_length=MAX_VALUES)
    """user id → weight for the weighted strategy; team members without an entry weigh 1."""

    @model_validator(mode="after")
    def _weights_need_weighted(self) -> Self:
        if self.weights and self.strategy is not Strategy.weighted:
            raise ValueError("weights only apply to the weighted strategy")
        return self

    def weight(self, user_id: int) -> int:
        return self.weights.get(user_id, 1)


class AssignmentPolicy(_Data):
    """Ordered rules, then the default rule for every lead that none of them took."""

    rules: Annotated[tuple[AssignmentRule, ...], Field(max_length=MAX_RULES)] = ()
    default: AssignmentRule | None = None

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: tuple[AssignmentRule, ...]) -> tuple[AssignmentRule, ...]:
        seen: dict[str, int] = {}
        for index, rule in enumerate(rules):
            if rule.name in seen:
                raise ValueError(
                    f"rule name {rule.name!r} is used twice (rules {seen[rule.name]} and {index})"
                )
            seen[rule.name] = index
        return rules

    @field_validator("default")
    @classmethod
    def _plain_default(
        cls, default: AssignmentRule | None, info: ValidationInfo
    ) -> AssignmentRule | None:
        if default is None:
            return None
        if not default.conditions.empty:
            raise ValueError(
                "the default rule takes every lead no rule took: give it no conditions"
            )
        names = [r.name for r in info.data.get("rules", ())]
        if default.name in names:
            raise ValueError(
                f"the default rule's name {default.name!r} is also rule {names.index(default.name)}"
            )
        return default


class Candidate(_Data):
    """A user who might get the lead, with what eligibility depends on."""

    user_id: int
    team_id: int | None = None
    open_leads: int = 0
    active: bool = True
    on_leave: bool = False


class Choice(_Data):
    """The owner chosen for a lead and the rule that chose them (recorded on the lead)."""

    user_id: int
    team_id: int | None
    rule: str


CandidateSource = Mapping[Target, Sequence[Candidate]] | Callable[[Target], Sequence[Candidate]]
"""The candidates of each target: a mapping (missing target = nobody) or a function."""


def eligible(candidate: Candidate, *, exclude: AbstractSet[int], open_lead_cap: int) -> bool:
    """Active, not on leave, not excluded (e.g. the owner a lead is taken from), under the cap."""
    return (
        candidate.active
        and not candidate.on_leave
        and candidate.user_id not in exclude
        and candidate.open_leads < open_lead_cap
    )


def matching_rules(policy: AssignmentPolicy, facts: LeadFacts) -> list[AssignmentRule]:
    """The rules whose conditions the lead meets, in order, then the default rule if any."""
    rules = [r for r in policy.rules if r.conditions.matches(facts)]
    if policy.default is not None:
        rules.append(policy.default)
    return rules


def round_robin_order(candidates: list[Candidate], last_user_id: int | None) -> list[Candidate]:
    """Candidates by user id, starting with the first one after the cursor's user and wrapping."""
    if last_user_id is None:
        return candidates
    start = bisect.bisect_right([c.user_id for c in candidates], last_user_id)
    return candidates[start:] + candidates[:start]


def pick(
    strategy: Strategy, order: list[Candidate], weight: Callable[[int], int] = lambda _: 1
) -> Candidate:
    """One of `order` (non-empty, in round-robin order) by `strategy`; `weight` maps a user id
    to their weight. Shared with ticket dispatch, where `open_leads` counts open tickets.

    - round_robin: the first in round-robin order.
    - least_open: fewest open leads; ties go to the first in round-robin order.
    - weighted: smooth weighted round robin (the nginx algorithm) whose state is the open-lead
      counts themselves: with W the sum of weights and T the sum of open leads of the eligible
      members, pick the largest `weight × (T + 1) − W × open_leads`, i.e. the member furthest
      below their weighted share of the team's open leads; ties in round-robin order. Starting
      from equal footing, every block of W consecutive assignments gives each member exactly
      their weight, and in between each member's count stays within 2 of n × weight / W after
      n assignments (the tests check both). Because the state is the live open-lead count,
      leads that close or return to the pool are accounted for and no per-user state is
      stored; a member who claims leads from the pool gets correspondingly fewer.
    """
    if strategy is Strategy.round_robin:
        return order[0]
    if strategy is Strategy.least_open:
        return min(order, key=lambda c: c.open_leads)
    total_weight = sum(weight(c.user_id) for c in order)
    total_open = sum(c.open_leads for c in order)
    return max(
        order,
        key=lambda c: weight(c.user_id) * (total_open + 1) - total_weight * c.open_leads,
    )


def choose(
    policy: AssignmentPolicy,
    facts: LeadFacts,
    candidates: CandidateSource,
    *,
    cursor: Mapping[str, int | None],
    exclude: AbstractSet[int] = frozenset(),
    open_lead_cap: int,
) -> Choice | None:
    """The owner for a lead with `facts`, or None: then the caller sends the lead to the pool.

    Rules are tried in order. The first rule whose conditions match *and* whose target has at
    least one eligible candidate (see `eligible`) wins. A matching rule whose people are all
    inactive, on leave, excluded or at the open-lead cap does not stop the search: the lead
    goes on to the next matching rule, and finally to the default rule, because a lead waiting
    for a full team is worse than a lead with the next-best team.

    `cursor` maps a rule name to the user who got that rule's previous lead (absent or None:
    start with the lowest user id). Candidates not belonging to a rule's target are ignored.
    """
    lookup = candidates if callable(candidates) else (lambda t: candidates.get(t, ()))
    for rule in matching_rules(policy, facts):
        pool: dict[int, Candidate] = {}
        for candidate in lookup(rule.target):
            if rule.target.includes(candidate) and eligible(
                candidate, exclude=exclude, open_lead_cap=open_lead_cap
            ):
                pool.setdefault(candidate.user_id, candidate)
        if not pool:
            continue
        order = round_robin_order(
            sorted(pool.values(), key=lambda c: c.user_id), cursor.get(rule.name)
        )
        winner = pick(rule.strategy, order, rule.weight)
        return Choice(user_id=winner.user_id, team_id=winner.team_id, rule=rule.name)
    return None


# --- database ------------------------------------------------------------------------------


def facts_of(lead: Lead, *, customer_tier: str | None = None) -> LeadFacts:
    return LeadFacts(
        source=lead.source,
        campaign=lead.campaign,
        province=lead.province,
        city=lead.city,
        industry=lead.industry,
        product_interest=lead.product_interest,
        score=lead.score or 0,
        customer_tier=customer_tier,
    )


async def open_lead_counts(session: AsyncSession, *, user_ids: AbstractSet[int]) -> dict[int, int]:
    """Open leads (assigned, contacted, qualified) per owner, in one grouped query."""
    if not user_ids:
        return {}
    rows = await session.execute(
        select(Lead.owner_id, func.count())
        .where(
            Lead.owner_id.in_(sorted(user_ids)),
            Lead.status.in_(sorted(s.value for s in COUNTED_STATUSES)),
        )
        .group_by(Lead.owner_id)
    )
    counts = {user_id: 0 for user_id in user_ids}
    counts.update({owner: count for owner, count in rows})
    return counts


async def open_lead_count(session: AsyncSession, *, user_id: int) -> int:
    """How many open leads one rep owns: the pool's claim cap compares this with the policy."""
    return (await open_lead_counts(session, user_ids={user_id}))[user_id]


async def load_candidates(
    session: AsyncSession, *, targets: AbstractSet[Target]
) -> dict[Target, list[Candidate]]:
    """The members of each target team (or the target user), with their open-lead counts."""
    team_ids = {t.team_id for t in targets if t.team_id is not None}
    user_ids = {t.user_id for t in targets if t.user_id is not None}
    result: dict[Target, list[Candidate]] = {t: [] for t in targets}
    if not targets:
        return result
    users = (
        await session.execute(
            select(User.id, User.team_id, User.active, User.on_leave)
            .where(or_(User.team_id.in_(sorted(team_ids)), User.id.in_(sorted(user_ids))))
            .order_by(User.id)
        )
    ).all()
    counts = await open_lead_counts(session, user_ids={row.id for row in users})
    for row in users:
        candidate = Candidate(
            user_id=row.id,
            team_id=row.team_id,
            open_leads=counts[row.id],
            active=row.active,
            on_leave=row.on_leave,
        )
        for target in targets:
            if target.includes(candidate):
                result[target].append(candidate)
    return result


async def cursors(session: AsyncSession, *, names: Sequence[str]) -> dict[str, int | None]:
    """Cursor positions of these rules; on PostgreSQL the rows stay locked until commit.

    The lock (taken before the open-lead counts are read) serialises concurrent assignments
    under the same rules, so two leads at once neither get the same round-robin turn nor push
    a rep past the cap. SQLite ignores FOR UPDATE; its writers are serialised anyway.
    """
    rows = await session.execute(
        select(AssignmentCursor.rule, AssignmentCursor.last_user_id)
        .where(AssignmentCursor.rule.in_(sorted(set(names))))
        .order_by(AssignmentCursor.rule)
        .with_for_update()
    )
    return {rule: last for rule, last in rows}


async def advance(session: AsyncSession, *, rule: str, user_id: int) -> None:
    """Upsert the rule's cursor to the user who just got a lead (portable ON CONFLICT)."""
    dialect = session.get_bind().dialect.name
    values = {"rule": rule, "last_user_id": user_id, "updated_at": utcnow()}
    if dialect in ("sqlite", "postgresql"):
        insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
        statement = insert(AssignmentCursor).values(**values)
        statement = statement.on_conflict_do_update(
            index_elements=[AssignmentCursor.rule],
            set_={"last_user_id": user_id, "updated_at": values["updated_at"]},
        )
        await session.execute(statement)
        return
    row = await session.get(AssignmentCursor, rule)  # pragma: no cover - other databases
    if row is None:  # pragma: no cover
        session.add(AssignmentCursor(**values))
    else:  # pragma: no cover
        row.last_user_id = user_id
    await session.flush()  # pragma: no cover


async def assign(
    session: AsyncSession,
    *,
    lead: Lead,
    policy: AssignmentPolicy,
    open_lead_cap: int,
    exclude: AbstractSet[int] = frozenset(),
) -> Choice | None:
    """Choose the owner of `lead` under `policy` and move the winning rule's cursor.

    Runs inside the caller's transaction and does not touch the lead: the caller sets the
    owner and `assigned_rule` (None means: send the lead to the pool). `exclude` holds users
    who must not get it, such as the owner it is being taken from.
    """
    tier = None
    if lead.customer_id is not None:
        tier = tier_of(
            await session.scalar(select(Customer.custom).where(Customer.id == lead.customer_id))
        )
    facts = facts_of(lead, customer_tier=tier)
    rules = matching_rules(policy, facts)
    if not rules:
        return None
    cursor = await cursors(session, names=[r.name for r in rules])
    candidates = await load_candidates(session, targets={r.target for r in rules})
    choice = choose(
        policy, facts, candidates, cursor=cursor, exclude=exclude, open_lead_cap=open_lead_cap
    )
    if choice is not None:
        await advance(session, rule=choice.rule, user_id=choice.user_id)
    return choice
