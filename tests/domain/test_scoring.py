"""Lead scoring and behaviour alerts as pure rules: exact points, window edges, caps, bursts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from domain.behaviour import (
    AlertRule,
    BehaviourKind,
    ScoringPolicy,
    Seen,
    bucket,
    burst_start,
    due_alerts,
    score,
)
from domain.policy import validate

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PRICING = AlertRule(
    name="pricing",
    kind=BehaviourKind.page_view,
    url_contains="/pricing",
    count=3,
    within=timedelta(days=7),
    title="upsell",
)


def view(url: str, days_ago: float) -> Seen:
    return Seen("page_view", url, NOW - timedelta(days=days_ago))


def test_default_policy_is_constructible_and_round_trips_as_json() -> None:
    policy = ScoringPolicy()
    assert policy.fields["phone"] == 10
    assert policy.events[BehaviourKind.event_attendance] == 20
    assert ScoringPolicy.model_validate(policy.model_dump(mode="json")) == policy
    assert validate("scoring", policy.model_dump(mode="json")) == policy


def test_fields_source_and_events_add_up_exactly() -> None:
    policy = ScoringPolicy(
        sources={"官网": 7},
        fields={"phone": 10, "email": 5, "company": 10, "custom.budget": 3, "consent": 1},
        events={BehaviourKind.page_view: 1, BehaviourKind.email_click: 5},
        caps={},
    )
    lead = {
        "source": "官网",
        "phone": "+8613800138000",
        "email": "  ",  # blank: not filled
        "company": None,
        "custom.budget": "100.00",
        "consent": False,  # an unticked box is not filled
    }
    events = [("page_view", "https://a.cn/", NOW)] * 4 + [("email_click", None, NOW)] * 2
    assert score(policy, lead, events) == 7 + 10 + 3 + 4 + 10


def test_source_matches_width_case_and_spaces_insensitively() -> None:
    policy = ScoringPolicy(sources={"Trade  Show": 9}, fields={})
    assert score(policy, {"source": "ｔｒａｄｅ show"}, []) == 9
    assert score(policy, {"source": "other"}, []) == 0
    with pytest.raises(ValidationError, match="differ only"):
        ScoringPolicy(sources={"A": 1, "a": 2})


def test_cap_limits_one_kind_only() -> None:
    policy = ScoringPolicy(
        fields={},
        events={BehaviourKind.page_view: 2, BehaviourKind.email_open: 3},
        caps={BehaviourKind.page_view: 5},
    )
    views = [("page_view", "https://a.cn/", NOW)] * 10
    opens = [("email_open", None, NOW)] * 4
    assert score(policy, {}, views[:2]) == 4
    assert score(policy, {}, views[:3]) == 5  # 6 capped at 5
    assert score(policy, {}, views + opens) == 5 + 12


def test_unknown_kinds_earn_nothing_and_unknown_fields_are_refused() -> None:
    assert score(ScoringPolicy(fields={}, events={}), {}, [("page_view", None, NOW)]) == 0
    with pytest.raises(ValidationError, match="unknown lead field"):
        ScoringPolicy(fields={"owner_id": 5})
    with pytest.raises(ValidationError):
        ScoringPolicy(sources={}, bogus=1)


def test_alert_counts_only_matching_urls_and_kind() -> None:
    policy = ScoringPolicy(alerts=(PRICING,))
    events = [
        view("https://a.cn/pricing", 1),
        view("https://a.cn/PRICING?plan=pro", 2),
        view("https://a.cn/about", 0.5),
        Seen("email_click", "https://a.cn/pricing", NOW),
    ]
    assert due_alerts(policy, events, NOW) == []
    assert due_alerts(policy, [*events, view("https://a.cn/pricing#x", 0)], NOW) == [PRICING]


def test_window_boundary_is_inclusive_and_older_views_do_not_count() -> None:
    policy = ScoringPolicy(alerts=(PRICING,))
    two = [view("https://a.cn/pricing", 0), view("https://a.cn/pricing", 3)]
    exactly_seven = [*two, view("https://a.cn/pricing", 7)]
    just_outside = [
        *two,
        Seen("page_view", "https://a.cn/pricing", NOW - timedelta(days=7, seconds=1)),
    ]
    assert due_alerts(policy, exactly_seven, NOW) == [PRICING]
    assert due_alerts(policy, just_outside, NOW) == []
    # events after `now` are not looked at
    assert due_alerts(policy, [*two, view("https://a.cn/pricing", -1)], NOW) == []


def test_one_burst_has_one_start_and_a_new_one_needs_a_full_window() -> None:
    day = timedelta(days=1)
    views = [view("https://a.cn/pricing", d) for d in (10, 9, 8)]  # burst at day -8
    assert burst_start(PRICING, views, NOW) == NOW - 8 * day
    more = [*views, view("https://a.cn/pricing", 7.5)]  # 4th view, same burst
    assert burst_start(PRICING, more, NOW) == NOW - 8 * day
    # Three more views after the first burst's window: a second burst begins at the third.
    later = [*more, *(view("https://a.cn/pricing", d) for d in (0.4, 0.3, 0.1))]
    assert burst_start(PRICING, later, NOW) == NOW - timedelta(days=0.1)
    assert bucket(NOW - 8 * day) == "20260302T120000Z"


def test_sustained_interest_re_alerts_once_per_window() -> None:
    daily = [view("https://a.cn/pricing", d) for d in range(20, -1, -1)]  # one view a day
    starts = {burst_start(PRICING, daily, NOW - timedelta(days=d)) for d in range(0, 19)}
    # bursts begin at day -18 (3rd view), -11 and -4: one task a week while it goes on
    assert starts == {NOW - timedelta(days=n) for n in (18, 11, 4)}


def test_burst_start_is_none_before_the_count_is_reached() -> None:
    assert burst_start(PRICING, [view("https://a.cn/pricing", 1)] * 2, NOW) is None
