"""Assignment rules: the pure choice (conditions, order, eligibility, strategies) and the DB
wrapper that counts open leads, honours the cap and keeps round-robin cursors."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain import assignment
from domain.assignment import (
    AssignmentPolicy,
    AssignmentRule,
    Candidate,
    Choice,
    Conditions,
    LeadFacts,
    Strategy,
    Target,
    choose,
)
from domain.customer import Customer
from domain.db import transaction
from domain.lead.models import AssignmentCursor, Lead, LeadStatus
from domain.user import User
from tests.conftest import MakeUser

CAP = 50


def team(*user_ids: int, team_id: int = 1, **fields: Any) -> list[Candidate]:
    return [Candidate(user_id=u, team_id=team_id, **fields) for u in user_ids]


def rule(
    name: str,
    *,
    team_id: int | None = None,
    user_id: int | None = None,
    strategy: Strategy = Strategy.round_robin,
    weights: dict[int, int] | None = None,
    **conditions: Any,
) -> AssignmentRule:
    if team_id is None and user_id is None:
        team_id = 1
    return AssignmentRule(
        name=name,
        conditions=Conditions(**conditions),
        target=Target(team_id=team_id, user_id=user_id),
        strategy=strategy,
        weights=weights or {},
    )


def pick(
    policy: AssignmentPolicy,
    candidates: dict[Target, Sequence[Candidate]],
    facts: LeadFacts | None = None,
    *,
    cursor: dict[str, int | None] | None = None,
    exclude: frozenset[int] = frozenset(),
    cap: int = CAP,
) -> Choice | None:
    return choose(
        policy,
        facts or LeadFacts(),
        candidates,
        cursor=cursor or {},
        exclude=exclude,
        open_lead_cap=cap,
    )


SALES = Target(team_id=1)
OTHERS = Target(team_id=2)
TWO_TEAMS = {SALES: team(1, 2, 3), OTHERS: team(11, 12, team_id=2)}


def with_default(*rules: AssignmentRule) -> AssignmentPolicy:
    return AssignmentPolicy(rules=rules, default=rule("catch-all", team_id=2))


# --- conditions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "fact", "wanted", "given_value", "other"),
    [
        ("sources", "source", "官网表单", "官网表单", "展会"),
        ("campaigns", "campaign", "Spring Expo", "spring  EXPO", "Autumn"),
        ("provinces", "province", "广东", "广东", "浙江"),
        ("cities", "city", "深圳", "深圳", "杭州"),
        ("industries", "industry", "制造业", "制造业", "零售"),
        ("product_interests", "product_interest", "ERP", "ｅｒｐ", "CRM"),
        ("customer_tiers", "customer_tier", "VIP", "vip", "standard"),
    ],
)
def test_each_list_condition_matches_its_fact_and_nothing_else(
    condition: str, fact: str, wanted: str, given_value: str, other: str
) -> None:
    policy = with_default(rule("special", **{condition: [wanted]}))
    hit = pick(policy, TWO_TEAMS, LeadFacts(**{fact: given_value}))
    miss = pick(policy, TWO_TEAMS, LeadFacts(**{fact: other}))
    missing = pick(policy, TWO_TEAMS, LeadFacts())
    assert hit is not None and hit.rule == "special"
    assert miss is not None and miss.rule == "catch-all"
    assert missing is not None and missing.rule == "catch-all"


def test_all_conditions_of_a_rule_must_hold() -> None:
    policy = with_default(rule("sz-erp", cities=["深圳"], product_interests=["ERP", "MES"]))
    both = pick(policy, TWO_TEAMS, LeadFacts(city="深圳", product_interest="MES"))
    one = pick(policy, TWO_TEAMS, LeadFacts(city="深圳", product_interest="CRM"))
    assert both is not None and both.rule == "sz-erp"
    assert one is not None and one.rule == "catch-all"


@pytest.mark.parametrize(
    ("score", "expected"),
    [(49, "catch-all"), (50, "hot"), (80, "hot"), (81, "catch-all")],
)
def test_score_bounds_are_inclusive(score: int, expected: str) -> None:
    policy = with_default(rule("hot", min_score=50, max_score=80))
    choice = pick(policy, TWO_TEAMS, LeadFacts(score=score))
    assert choice is not None and choice.rule == expected


def test_null_condition_lists_mean_any() -> None:
    conditions = Conditions.model_validate({"sources": None, "cities": None})
    assert conditions.empty
    assert conditions.matches(LeadFacts(source="x", city="y"))


# --- order of rules ----------------------------------------------------------------------------


def test_first_matching_rule_wins() -> None:
    policy = with_default(rule("web", sources=["web"]), rule("any-web", team_id=2, sources=["web"]))
    choice = pick(policy, TWO_TEAMS, LeadFacts(source="web"))
    assert choice == Choice(user_id=1, team_id=1, rule="web")


def test_rule_whose_people_are_all_unavailable_falls_through_to_the_next() -> None:
    policy = AssignmentPolicy(
        rules=(rule("first", sources=["web"]), rule("second", team_id=2, sources=["web"])),
    )
    candidates = {SALES: team(1, 2, on_leave=True), OTHERS: team(11, team_id=2)}
    choice = pick(policy, candidates, LeadFacts(source="web"))
    assert choice == Choice(user_id=11, team_id=2, rule="second")


def test_default_rule_catches_leads_no_rule_matched() -> None:
    policy = with_default(rule("web", sources=["web"]))
    choice = pick(policy, TWO_TEAMS, LeadFacts(source="phone"))
    assert choice == Choice(user_id=11, team_id=2, rule="catch-all")


def test_no_matching_rule_and_no_default_is_none() -> None:
    policy = AssignmentPolicy(rules=(rule("web", sources=["web"]),))
    assert pick(policy, TWO_TEAMS, LeadFacts(source="phone")) is None


def test_nobody_eligible_anywhere_is_none() -> None:
    policy = with_default(rule("web"))
    candidates = {SALES: team(1, active=False), OTHERS: team(11, team_id=2, open_leads=CAP)}
    assert pick(policy, candidates) is None


def test_empty_policy_assigns_nobody() -> None:
    assert pick(AssignmentPolicy(), TWO_TEAMS) is None


def test_user_target_is_that_one_user_with_their_team() -> None:
    policy = with_default(rule("vip", user_id=12, customer_tiers=["VIP"]))
    choice = pick(policy, {Target(user_id=12): team(12, team_id=2)}, LeadFacts(customer_tier="VIP"))
    assert choice == Choice(user_id=12, team_id=2, rule="vip")


def test_user_target_on_leave_falls_through_to_the_default() -> None:
    policy = with_default(rule("vip", user_id=12))
    candidates = {Target(user_id=12): team(12, team_id=2, on_leave=True), **TWO_TEAMS}
    choice = pick(policy, candidates)
    assert choice == Choice(user_id=11, team_id=2, rule="catch-all")


def test_candidates_outside_the_target_are_ignored() -> None:
    policy = AssignmentPolicy(rules=(rule("sales"),))
    stray = [Candidate(user_id=1, team_id=2), Candidate(user_id=5, team_id=1)]
    choice = pick(policy, {SALES: stray})
    assert choice == Choice(user_id=5, team_id=1, rule="sales")


def test_candidates_may_come_from_a_function() -> None:
    asked: list[Target] = []

    def members(target: Target) -> list[Candidate]:
        asked.append(target)
        return TWO_TEAMS.get(target, [])

    policy = with_default(rule("web", sources=["web"]))
    choice = choose(
        policy, LeadFacts(source="mail"), members, cursor={}, exclude=set(), open_lead_cap=CAP
    )
    assert choice == Choice(user_id=11, team_id=2, rule="catch-all")
    assert asked == [OTHERS]


# --- eligibility -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unavailable", "exclude"),
    [
        (Candidate(user_id=1, team_id=1, active=False), frozenset()),
        (Candidate(user_id=1, team_id=1, on_leave=True), frozenset()),
        (Candidate(user_id=1, team_id=1, open_leads=CAP), frozenset()),
        (Candidate(user_id=1, team_id=1, open_leads=CAP + 5), frozenset()),
        (Candidate(user_id=1, team_id=1), frozenset({1})),
    ],
    ids=["inactive", "on-leave", "at-cap", "over-cap", "excluded"],
)
def test_unavailable_user_is_skipped(unavailable: Candidate, exclude: frozenset[int]) -> None:
    policy = AssignmentPolicy(rules=(rule("sales"),))
    candidates = {SALES: [unavailable, Candidate(user_id=2, team_id=1)]}
    assert pick(policy, candidates, exclude=exclude) == Choice(user_id=2, team_id=1, rule="sales")


def test_one_below_the_cap_is_still_eligible() -> None:
    policy = AssignmentPolicy(rules=(rule("sales"),))
    choice = pick(policy, {SALES: team(1, open_leads=CAP - 1)})
    assert choice == Choice(user_id=1, team_id=1, rule="sales")


# --- strategies --------------------------------------------------------------------------------


def run(
    policy: AssignmentPolicy,
    members: list[Candidate],
    picks: int,
    *,
    cursor: int | None = None,
    count_open: bool = False,
) -> list[int]:
    """Assign `picks` leads one after another, moving the cursor (and open counts) like assign."""
    open_leads = {c.user_id: c.open_leads for c in members}
    chosen: list[int] = []
    last = cursor
    for _ in range(picks):
        current = [c.model_copy(update={"open_leads": open_leads[c.user_id]}) for c in members]
        choice = pick(policy, {SALES: current}, cursor={policy.rules[0].name: last})
        assert choice is not None
        chosen.append(choice.user_id)
        last = choice.user_id
        if count_open:
            open_leads[choice.user_id] += 1
    return chosen


def test_round_robin_cycles_in_user_id_order_and_wraps() -> None:
    policy = AssignmentPolicy(rules=(rule("rr"),))
    assert run(policy, team(9, 3, 7), 7) == [3, 7, 9, 3, 7, 9, 3]


@pytest.mark.parametrize(
    ("last", "expected"),
    [(None, 3), (3, 7), (7, 9), (8, 9), (9, 3), (100, 3), (1, 3)],
    ids=["fresh", "after-3", "after-7", "after-departed-8", "wraps", "beyond-all", "before-all"],
)
def test_round_robin_continues_after_the_cursor(last: int | None, expected: int) -> None:
    policy = AssignmentPolicy(rules=(rule("rr"),))
    choice = pick(policy, {SALES: team(3, 7, 9)}, cursor={"rr": last})
    assert choice is not None and choice.user_id == expected


def test_round_robin_skips_unavailable_users_without_losing_its_place() -> None:
    policy = AssignmentPolicy(rules=(rule("rr"),))
    members = [*team(3), Candidate(user_id=7, team_id=1, on_leave=True), *team(9)]
    assert run(policy, members, 4, cursor=3) == [9, 3, 9, 3]


def test_cursors_are_per_rule() -> None:
    policy = with_default(rule("web", sources=["web"]))
    choice = pick(policy, TWO_TEAMS, LeadFacts(source="web"), cursor={"catch-all": 11, "web": 1})
    assert choice == Choice(user_id=2, team_id=1, rule="web")


def test_least_open_picks_the_user_with_fewest_open_leads() -> None:
    policy = AssignmentPolicy(rules=(rule("lo", strategy=Strategy.least_open),))
    members = [
        Candidate(user_id=1, team_id=1, open_leads=5),
        Candidate(user_id=2, team_id=1, open_leads=2),
        Candidate(user_id=3, team_id=1, open_leads=4),
    ]
    assert pick(policy, {SALES: members}) == Choice(user_id=2, team_id=1, rule="lo")


def test_least_open_breaks_ties_in_round_robin_order() -> None:
    policy = AssignmentPolicy(rules=(rule("lo", strategy=Strategy.least_open),))
    members = [
        Candidate(user_id=1, team_id=1, open_leads=2),
        Candidate(user_id=2, team_id=1, open_leads=9),
        Candidate(user_id=3, team_id=1, open_leads=2),
    ]
    assert [
        pick(policy, {SALES: members}, cursor={"lo": last}).user_id for last in (None, 1, 3)
    ] == [
        1,
        3,
        1,
    ]


def test_least_open_levels_the_load() -> None:
    policy = AssignmentPolicy(rules=(rule("lo", strategy=Strategy.least_open),))
    members = [
        Candidate(user_id=1, team_id=1, open_leads=6),
        Candidate(user_id=2, team_id=1, open_leads=0),
        Candidate(user_id=3, team_id=1, open_leads=3),
    ]
    counts = Counter(run(policy, members, 12, count_open=True))
    assert {u: members[u - 1].open_leads + counts[u] for u in (1, 2, 3)} == {1: 7, 2: 7, 3: 7}


def test_weighted_gives_exactly_the_weights_over_whole_rounds() -> None:
    policy = AssignmentPolicy(
        rules=(rule("w", strategy=Strategy.weighted, weights={1: 3, 2: 2}),)  # user 3 weighs 1
    )
    counts = Counter(run(policy, team(1, 2, 3), 96, count_open=True))
    assert counts == {1: 48, 2: 32, 3: 16}


def test_weighted_stays_within_two_of_the_share_after_any_number_of_picks() -> None:
    weights = {1: 5, 2: 3, 3: 1, 4: 1}
    policy = AssignmentPolicy(rules=(rule("w", strategy=Strategy.weighted, weights=weights),))
    chosen = run(policy, team(1, 2, 3, 4), 100, count_open=True)
    total = sum(weights.values())
    for n in range(1, 101):
        counts = Counter(chosen[:n])
        for user, weight in weights.items():
            assert abs(counts[user] - n * weight / total) < 2, (n, user, counts)
    assert Counter(chosen) == {1: 50, 2: 30, 3: 10, 4: 10}


def test_weighted_interleaves_rather_than_bursting() -> None:
    policy = AssignmentPolicy(rules=(rule("w", strategy=Strategy.weighted, weights={1: 2}),))
    assert run(policy, team(1, 2), 6, count_open=True) == [1, 2, 1, 1, 2, 1]


def test_weighted_favours_whoever_is_furthest_below_their_share() -> None:
    policy = AssignmentPolicy(rules=(rule("w", strategy=Strategy.weighted, weights={1: 3}),))
    members = [
        Candidate(user_id=1, team_id=1, open_leads=9),
        Candidate(user_id=2, team_id=1, open_leads=1),
    ]
    # Share of 11 open leads: user 1 should carry 8.25, user 2 2.75 — user 2 is further below.
    assert pick(policy, {SALES: members}) == Choice(user_id=2, team_id=1, rule="w")


@settings(max_examples=150, deadline=None)
@given(weights=st.lists(st.integers(1, 12), min_size=1, max_size=6), start=st.integers(0, 6))
def test_weighted_every_round_of_total_weight_gives_each_exactly_their_weight(
    weights: list[int], start: int
) -> None:
    by_user = {index + 1: w for index, w in enumerate(weights)}
    policy = AssignmentPolicy(rules=(rule("w", strategy=Strategy.weighted, weights=by_user),))
    total = sum(weights)
    cursor = start if start <= len(weights) else None
    chosen = run(policy, team(*by_user), 2 * total, cursor=cursor, count_open=True)
    for block in (chosen[:total], chosen[total:]):
        assert Counter(block) == by_user


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rules": [{"name": "a", "target": {}}]}, "give exactly one of user_id or team_id"),
        (
            {"rules": [{"name": "a", "target": {"user_id": 1, "team_id": 2}}]},
            "give exactly one of user_id or team_id",
        ),
        (
            {"rules": [{"name": "a", "target": {"team_id": 1}, "weights": {"3": 2}}]},
            "weights only apply to the weighted strategy",
        ),
        (
            {
                "rules": [
                    {"name": "a", "target": {"team_id": 1}},
                    {"name": "a", "target": {"team_id": 2}},
                ]
            },
            "rule name 'a' is used twice (rules 0 and 1)",
        ),
        (
            {"default": {"name": "d", "target": {"team_id": 1}, "conditions": {"cities": ["x"]}}},
            "give it no conditions",
        ),
        (
            {
                "rules": [{"name": "d", "target": {"team_id": 1}}],
                "default": {"name": "d", "target": {"team_id": 2}},
            },
            "the default rule's name 'd' is also rule 0",
        ),
        (
            {
                "rules": [
                    {
                        "name": "a",
                        "target": {"team_id": 1},
                        "conditions": {"min_score": 9, "max_score": 1},
                    }
                ]
            },
            "min_score must not be greater than max_score",
        ),
        ({"rules": [{"name": "a", "target": {"team_id": 1}, "owner": 3}]}, "Extra inputs"),
        ({"rules": [{"name": " ", "target": {"team_id": 1}}]}, "at least 1 character"),
        (
            {
                "rules": [
                    {
                        "name": "a",
                        "target": {"team_id": 1},
                        "strategy": "weighted",
                        "weights": {"3": 0},
                    }
                ]
            },
            "greater than or equal to 1",
        ),
    ],
)
def test_invalid_policies_are_refused_with_a_clear_message(data: dict, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AssignmentPolicy.model_validate(data)
    assert message in str(caught.value)


def test_policy_round_trips_through_json() -> None:
    policy = AssignmentPolicy(
        rules=(rule("w", strategy=Strategy.weighted, weights={4: 3}, sources=["web"]),),
        default=rule("d", user_id=9),
    )
    dumped = policy.model_dump(mode="json")
    assert dumped["rules"][0]["weights"] == {"4": 3}
    assert AssignmentPolicy.model_validate(dumped) == policy
    assert AssignmentPolicy.model_validate_json(policy.model_dump_json()) == policy


# --- property: the choice is always allowed ---------------------------------------------------

SOURCES = ["web", "expo", "phone"]


@st.composite
def scenarios(
    draw: st.DrawFn,
) -> tuple[
    AssignmentPolicy,
    dict[Target, list[Candidate]],
    LeadFacts,
    dict[str, int | None],
    frozenset[int],
    int,
]:
    user_ids = draw(st.lists(st.integers(1, 30), min_size=0, max_size=12, unique=True))
    people = [
        Candidate(
            user_id=u,
            team_id=draw(st.sampled_from([None, 1, 2, 3])),
            open_leads=draw(st.integers(0, 6)),
            active=draw(st.booleans()),
            on_leave=draw(st.booleans()),
        )
        for u in user_ids
    ]
    targets = st.one_of(
        st.builds(Target, team_id=st.integers(1, 4)),
        st.builds(Target, user_id=st.integers(1, 30)),
    )

    def make_rule(name: str) -> AssignmentRule:
        strategy = draw(st.sampled_from(list(Strategy)))
        weights = (
            draw(st.dictionaries(st.integers(1, 30), st.integers(1, 5), max_size=5))
            if strategy is Strategy.weighted
            else {}
        )
        return AssignmentRule(
            name=name,
            conditions=Conditions(sources=tuple(draw(st.sets(st.sampled_from(SOURCES))))),
            target=draw(targets),
            strategy=strategy,
            weights=weights,
        )

    rules = tuple(make_rule(f"r{i}") for i in range(draw(st.integers(0, 4))))
    default = make_rule("default") if draw(st.booleans()) else None
    if default is not None:
        default = default.model_copy(update={"conditions": Conditions()})
    policy = AssignmentPolicy(rules=rules, default=default)
    every = [*rules, *([default] if default else [])]
    # Deliberately sloppy input: each target gets everyone, so choose must filter by target.
    candidates = {r.target: people for r in every}
    facts = LeadFacts(source=draw(st.sampled_from([None, *SOURCES])))
    cursor = {r.name: draw(st.one_of(st.none(), st.integers(0, 31))) for r in every}
    exclude = frozenset(draw(st.sets(st.integers(1, 30), max_size=4)))
    cap = draw(st.integers(1, 7))
    return policy, candidates, facts, cursor, exclude, cap


@settings(max_examples=400, deadline=None)
@given(scenarios())
def test_choice_is_eligible_and_belongs_to_the_first_rule_that_has_anyone(
    scenario: tuple[
        AssignmentPolicy,
        dict[Target, list[Candidate]],
        LeadFacts,
        dict[str, int | None],
        frozenset[int],
        int,
    ],
) -> None:
    policy, candidates, facts, cursor, exclude, cap = scenario
    choice = choose(policy, facts, candidates, cursor=cursor, exclude=exclude, open_lead_cap=cap)

    def available(r: AssignmentRule) -> list[Candidate]:
        return [
            c
            for c in candidates.get(r.target, [])
            if r.target.includes(c) and assignment.eligible(c, exclude=exclude, open_lead_cap=cap)
        ]

    expected = next((r for r in assignment.matching_rules(policy, facts) if available(r)), None)
    if expected is None:
        assert choice is None
        return
    assert choice is not None and choice.rule == expected.name
    winner = next(c for c in available(expected) if c.user_id == choice.user_id)
    assert winner.active and not winner.on_leave
    assert winner.user_id not in exclude and winner.open_leads < cap
    assert expected.target.includes(winner) and choice.team_id == winner.team_id


# --- database ----------------------------------------------------------------------------------

Sessions = async_sessionmaker[AsyncSession]
MakeTeam = Callable[..., Awaitable[int]]


async def add_lead(sessions: Sessions, **fields: Any) -> int:
    async with transaction(sessions) as session:
        lead = Lead(**fields)
        session.add(lead)
        await session.flush()
        return lead.id


async def assign_and_write(
    sessions: Sessions, lead_id: int, policy: AssignmentPolicy, *, cap: int = CAP
) -> Choice | None:
    """What the lead activity does: choose, then write owner, status and rule in one transaction."""
    async with transaction(sessions) as session:
        lead = await session.get(Lead, lead_id)
        assert lead is not None
        choice = await assignment.assign(session, lead=lead, policy=policy, open_lead_cap=cap)
        if choice is not None:
            lead.owner_id = choice.user_id
            lead.assigned_rule = choice.rule
            lead.status = LeadStatus.assigned.value
        return choice


async def test_assign_round_robins_across_a_team_and_persists_the_cursor(
    sessions: Sessions, make_user: MakeUser, make_team: MakeTeam
) -> None:
    team_id = await make_team("华南销售")
    reps = [(await make_user(f"rep{i}", team_id=team_id)).id for i in range(3)]
    await make_user("outsider")
    policy = AssignmentPolicy(rules=(rule("south", team_id=team_id),))

    owners = []
    for _ in range(5):
        choice = await assign_and_write(sessions, await add_lead(sessions), policy)
        assert choice is not None and choice.rule == "south" and choice.team_id == team_id
        owners.append(choice.user_id)

    assert owners == [reps[0], reps[1], reps[2], reps[0], reps[1]]
    async with sessions() as session:
        cursor = await session.get(AssignmentCursor, "south")
        stored = (await session.scalars(select(Lead.assigned_rule))).all()
    assert cursor is not None and cursor.last_user_id == reps[1]
    assert set(stored) == {"south"}


async def test_assign_least_open_counts_only_open_leads_of_each_owner(
    sessions: Sessions, make_user: MakeUser, make_team: MakeTeam
) -> None:
    team_id = await make_team("华东销售")
    busy, idle = [(await make_user(name, team_id=team_id)).id for name in ("busy", "idle")]
    for status in (LeadStatus.assigned, LeadStatus.contacted, LeadStatus.qualified):
        await add_lead(sessions, owner_id=busy, status=status.value)
    for status in (
        LeadStatus.new,
        LeadStatus.pooled,
        LeadStatus.converted,
        LeadStatus.disqualified,
    ):
        await add_lead(sessions, owner_id=idle, status=status.value)
        await add_lead(sessions, owner_id=idle, status=status.value)
    await add_lead(sessions, owner_id=idle, status=LeadStatus.contacted.value)

    async with sessions() as session:
        assert await assignment.open_lead_count(session, user_id=busy) == 3
        assert await assignment.open_lead_count(session, user_id=idle) == 1
        assert await assignment.open_lead_counts(session, user_ids={busy, idle, 999}) == {
            busy: 3,
            idle: 1,
            999: 0,
        }

    policy = AssignmentPolicy(rules=(rule("east", team_id=team_id, strategy=Strategy.least_open),))
    owners = [
        (await assign_and_write(sessions, await add_lead(sessions), policy)).user_id
        for _ in range(3)
    ]
    # idle has 1 open and busy 3: idle takes two, then both have 3 and round robin goes on.
    assert owners == [idle, idle, busy]


async def test_assign_honours_the_open_lead_cap_and_availability(
    sessions: Sessions, make_user: MakeUser, make_team: MakeTeam
) -> None:
    team_id = await make_team("北方销售")
    full, away, gone, free = [
        (await make_user(name, team_id=team_id)).id for name in ("full", "away", "gone", "free")
    ]
    async with transaction(sessions) as session:
        await session.execute(update(User).where(User.id == away).values(on_leave=True))
        await session.execute(update(User).where(User.id == gone).values(active=False))
    await add_lead(sessions, owner_id=full, status=LeadStatus.assigned.value)
    await add_lead(sessions, owner_id=full, status=LeadStatus.contacted.value)
    policy = AssignmentPolicy(rules=(rule("north", team_id=team_id),))

    first = await assign_and_write(sessions, await add_lead(sessions), policy, cap=2)
    second = await assign_and_write(sessions, await add_lead(sessions), policy, cap=2)
    third = await assign_and_write(sessions, await add_lead(sessions), policy, cap=2)

    assert first is not None and first.user_id == free
    assert second is not None and second.user_id == free
    assert third is None  # everyone at the cap, away or gone: the caller pools the lead
    async with sessions() as session:
        cursor = await session.get(AssignmentCursor, "north")
    assert cursor is not None and cursor.last_user_id == free


async def test_assign_excludes_the_previous_owner(
    sessions: Sessions, make_user: MakeUser, make_team: MakeTeam
) -> None:
    team_id = await make_team("西部销售")
    first, second = [(await make_user(n, team_id=team_id)).id for n in ("first", "second")]
    policy = AssignmentPolicy(rules=(rule("west", team_id=team_id),))
    lead_id = await add_lead(sessions, owner_id=first, status=LeadStatus.assigned.value)
    async with transaction(sessions) as session:
        lead = await session.get(Lead, lead_id)
        assert lead is not None
        choice = await assignment.assign(
            session, lead=lead, policy=policy, open_lead_cap=CAP, exclude={first}
        )
    assert choice == Choice(user_id=second, team_id=team_id, rule="west")


async def test_assign_matches_the_customer_tier_and_falls_back_to_the_default(
    sessions: Sessions, make_user: MakeUser, make_team: MakeTeam
) -> None:
    key_accounts = await make_team("大客户部")
    general = await make_team("综合销售")
    vip_rep = (await make_user("vip-rep", team_id=key_accounts)).id
    rep = (await make_user("rep", team_id=general)).id
    async with transaction(sessions) as session:
        customer = Customer(
            kind="company", name="云杉科技", name_key="云杉科技", custom={"tier": "VIP"}
        )
        session.add(customer)
        await session.flush()
        customer_id = customer.id
    policy = AssignmentPolicy(
        rules=(rule("vip", team_id=key_accounts, customer_tiers=["vip"]),),
        default=rule("everyone", team_id=general),
    )

    matched = await assign_and_write(
        sessions, await add_lead(sessions, customer_id=customer_id), policy
    )
    unknown = await assign_and_write(sessions, await add_lead(sessions), policy)

    assert matched == Choice(user_id=vip_rep, team_id=key_accounts, rule="vip")
    assert unknown == Choice(user_id=rep, team_id=general, rule="everyone")


async def test_assign_without_any_matching_rule_touches_nothing(sessions: Sessions) -> None:
    policy = AssignmentPolicy(rules=(rule("web", sources=["web"]),))
    lead_id = await add_lead(sessions, source="phone")
    assert await assign_and_write(sessions, lead_id, policy) is None
    async with sessions() as session:
        assert (await session.scalars(select(AssignmentCursor))).all() == []
        lead = await session.get(Lead, lead_id)
    assert lead is not None and lead.owner_id is None and lead.status == LeadStatus.new.value


async def test_concurrent_assignments_take_turns_on_postgresql(
    db_url: str, sessions: Sessions, make_user: MakeUser, make_team: MakeTeam
) -> None:
    """The cursor row is locked before the counts are read, so two leads at once get two reps."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite serialises writers itself; FOR UPDATE is a PostgreSQL lock")
    team_id = await make_team("并发销售")
    reps = [(await make_user(f"c{i}", team_id=team_id)).id for i in range(3)]
    policy = AssignmentPolicy(rules=(rule("busy", team_id=team_id),))
    first = await assign_and_write(sessions, await add_lead(sessions), policy)
    assert first is not None and first.user_id == reps[0]

    leads = [await add_lead(sessions), await add_lead(sessions)]
    both = await asyncio.gather(*(assign_and_write(sessions, i, policy) for i in leads))

    assert sorted(c.user_id for c in both if c is not None) == [reps[1], reps[2]]
