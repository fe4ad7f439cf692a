"""Behaviour events (page views, form views, mail opens …) that score leads and raise alerts.

Three layers, so the rules are testable without a database:

- `ScoringPolicy` is versioned policy data (kind "scoring"): points per source, per filled lead
  field and per behaviour kind (with optional caps), and alert rules such as "the pricing page
  viewed 3 times in 7 days".
- `score`, `due_alerts` and `burst_start` are pure functions over plain tuples.
- `rescore` and `record` are the thin DB wrappers: load, call the pure functions, write.

Alert idempotency ("window bucketing"). A rule's task key is
`alert:<rule>:<lead|customer>:<id>:<burst start>` where the burst start is the instant of the
event at which the rule's count was first reached inside its window. Later events less than
`within` after that instant belong to the same burst, so they compute the same key and
`task.open_task` returns the task already made: one burst raises one task, however many more
views follow and however often a request is retried. Once `within` has passed since the burst
began, a renewed count starts a new burst, hence one new task — sustained interest re-alerts at
most once per window length. The burst start is derived from the stored history alone (not from
the wall clock), so two requests computing it concurrently agree on the key.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import ModuleType
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from sqlalchemy import ForeignKey, Index, String, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from domain import audit, normalize, task, timeline
from domain import customer as customers
from domain import policy as policies
from domain.access import Actor, Scope
from domain.customer.models import Contact, Customer
from domain.db import Base, utcnow
from domain.errors import Invalid, NotFound
from domain.lead.models import OPEN_STATUSES, Lead
from domain.schema import DbId, Input

__all__ = [
    "MAX_CLOCK_SKEW",
    "AlertRaised",
    "AlertRule",
    "BehaviourEvent",
    "BehaviourIn",
    "BehaviourKind",
    "BehaviourRecorded",
    "ScoringPolicy",
    "Seen",
    "burst_start",
    "due_alerts",
    "fields_of",
    "form_submitted",
    "record",
    "rescore",
    "score",
]


class BehaviourKind(StrEnum):
    page_view = "page_view"
    form_view = "form_view"
    email_open = "email_open"
    email_click = "email_click"
    event_attendance = "event_attendance"
    form_submit = "form_submit"


class BehaviourEvent(Base):
    __tablename__ = "behaviour_events"
    __table_args__ = (
        Index("ix_behaviour_lead", "lead_id", "kind", "at"),
        Index("ix_behaviour_customer", "customer_id", "kind", "at"),
        Index("ix_behaviour_visitor", "visitor_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    url: Mapped[str | None] = mapped_column(String(2000))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    visitor_id: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(20))
    email: Mapped[str | None] = mapped_column(String(254))
    props: Mapped[dict[str, Any]] = mapped_column(default=dict)


# --- the policy ------------------------------------------------------------------------------

MAX_SCORE = 1_000_000_000
"""Scores are clamped to ±this, so a silly policy can never overflow the integer column."""
Points = Annotated[int, Field(ge=-10_000, le=10_000)]
Cap = Annotated[int, Field(ge=0, le=1_000_000)]
RuleName = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9_.-]{0,59}$")
]
"""Lower-case ASCII, at most 60: the name is part of the alert task's idempotency key."""

SCORED_LEAD_FIELDS = frozenset(
    {
        "contact_name",
        "company",
        "phone",
        "email",
        "wechat_id",
        "credit_code",
        "province",
        "city",
        "industry",
        "product_interest",
        "message",
        "consent",
        "visitor_id",
    }
)
"""Lead fields that may earn points when filled; custom fields are named `custom.<key>`."""
_CUSTOM_KEY = re.compile(r"^custom\.[a-z][a-z0-9_]{0,63}$")


def _fold(value: str) -> str:
    """Compare sources as people mean them: half-width, case-folded, single-spaced."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


class _Data(BaseModel):
    """Frozen and strict about unknown keys: published as JSON, pinned as a version."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AlertRule(_Data):
    """`count` events of `kind` (whose URL contains `url_contains`, if given) within `within`."""

    name: RuleName
    kind: BehaviourKind
    url_contains: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    """Case-insensitive substring of the (normalised) URL, e.g. "/pricing"."""
    count: Annotated[int, Field(ge=1, le=1000)]
    within: Annotated[timedelta, Field(gt=timedelta(0), le=timedelta(days=366))]
    """ISO-8601 (`P7D`, `PT1H`) or seconds."""
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    """The alert task's title, as the owner reads it in the inbox."""

    def matches(self, kind: str, url: str | None) -> bool:
        if kind != self.kind:
            return False
        if self.url_contains is None:
            return True
        return url is not None and self.url_contains.casefold() in url.casefold()


DEFAULT_EVENT_POINTS: dict[BehaviourKind, int] = {
    BehaviourKind.page_view: 1,
    BehaviourKind.form_view: 2,
    BehaviourKind.email_open: 2,
    BehaviourKind.email_click: 5,
    BehaviourKind.event_attendance: 20,
    BehaviourKind.form_submit: 10,
}
DEFAULT_FIELD_POINTS: dict[str, int] = {
    "phone": 10,
    "email": 5,
    "company": 10,
    "industry": 5,
    "product_interest": 10,
}
DEFAULT_CAPS: dict[BehaviourKind, int] = {
    BehaviourKind.page_view: 30,
    BehaviourKind.email_open: 20,
}
DEFAULT_ALERTS = (
    AlertRule(
        name="pricing-interest",
        kind=BehaviourKind.page_view,
        url_contains="pricing",
        count=3,
        within=timedelta(days=7),
        title="7 天内 3 次查看价格页，请跟进升级机会 (pricing page viewed 3 times in 7 days)",
    ),
)


class ScoringPolicy(_Data):
    """Rule-based lead score: source + filled fields + behaviour, and upsell alert rules.

    Every part is optional; `ScoringPolicy()` is the built-in default (version 0).
    """

    sources: dict[Annotated[str, Field(min_length=1, max_length=60)], Points] = {}
    """Points by lead source ("官网": 5); matched width-, case- and space-insensitively."""
    fields: dict[str, Points] = Field(default_factory=lambda: dict(DEFAULT_FIELD_POINTS))
    """Points for each lead field that is filled: `phone`, `company`, … or `custom.<key>`."""
    events: dict[BehaviourKind, Points] = Field(default_factory=lambda: dict(DEFAULT_EVENT_POINTS))
    """Points per behaviour event of each kind; a kind not listed earns nothing."""
    caps: dict[BehaviourKind, Cap] = Field(default_factory=lambda: dict(DEFAULT_CAPS))
    """At most this many points in total from one kind, so a crawler cannot inflate a score."""
    alerts: Annotated[tuple[AlertRule, ...], Field(max_length=100)] = DEFAULT_ALERTS

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, int]) -> dict[str, int]:
        for key in value:
            if key not in SCORED_LEAD_FIELDS and not _CUSTOM_KEY.match(key):
                raise ValueError(
                    f"unknown lead field {key!r}: use one of "
                    f"{', '.join(sorted(SCORED_LEAD_FIELDS))} or custom.<key>"
                )
        return value

    @field_validator("sources")
    @classmethod
    def _distinct_sources(cls, value: dict[str, int]) -> dict[str, int]:
        folded = [_fold(k) for k in value]
        if len(set(folded)) != len(folded):
            raise ValueError("two sources differ only in case, width or spaces")
        return value

    @model_validator(mode="after")
    def _distinct_alerts(self) -> ScoringPolicy:
        names = [rule.name for rule in self.alerts]
        if len(set(names)) != len(names):
            raise ValueError("alert rule names must be unique")
        return self

    def source_points(self, source: str | None) -> int:
        if not source:
            return 0
        wanted = _fold(source)
        return next((p for s, p in self.sources.items() if _fold(s) == wanted), 0)


# --- pure rules ------------------------------------------------------------------------------


class Seen(NamedTuple):
    """One behaviour event as the rules see it; plain `(kind, url, at)` tuples do as well."""

    kind: str
    url: str | None
    at: datetime


def _filled(value: Any) -> bool:
    if value is None or value is False:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | dict | set):
        return bool(value)
    return True


def score(
    policy: ScoringPolicy,
    lead_fields: Mapping[str, Any],
    events: Iterable[tuple[str, str | None, datetime]],
) -> int:
    """Source points + points of each filled field + event points per kind (capped per kind).

    `lead_fields` maps field names (and `custom.<key>`) to values; blank strings, None, False
    and empty lists are "not filled". Events are counted whatever their age: scores only grow
    with interest, they do not decay.
    """
    total = policy.source_points(lead_fields.get("source"))
    total += sum(p for name, p in policy.fields.items() if _filled(lead_fields.get(name)))
    for kind, n in Counter(str(kind) for kind, _url, _at in events).items():
        points = policy.events.get(kind, 0) * n
        cap = policy.caps.get(kind)
        total += points if cap is None else min(points, cap)
    return max(-MAX_SCORE, min(MAX_SCORE, total))


def _matching(
    rule: AlertRule, events: Iterable[tuple[str, str | None, datetime]]
) -> list[datetime]:
    return sorted(at for kind, url, at in events if rule.matches(kind, url))


def due_alerts(
    policy: ScoringPolicy,
    events: Iterable[tuple[str, str | None, datetime]],
    now: datetime,
) -> list[AlertRule]:
    """Rules with at least `count` matching events in the window `[now - within, now]`.

    Both ends are inclusive: an event exactly `within` old still counts; events after `now`
    are not looked at.
    """
    seen = list(events)
    due = []
    for rule in policy.alerts:
        start = now - rule.within
        if sum(1 for at in _matching(rule, seen) if start <= at <= now) >= rule.count:
            due.append(rule)
    return due


def burst_start(
    rule: AlertRule,
    events: Iterable[tuple[str, str | None, datetime]],
    now: datetime,
) -> datetime | None:
    """When the burst that makes `rule` due at `now` began (see the module docstring).

    Walks the matching events up to `now` in time order; a burst begins at the first event at
    which `count` events lie in `[at - within, at]`, provided no burst began less than `within`
    before it. None if no burst has begun by `now`.
    """
    window: deque[datetime] = deque()
    begun: datetime | None = None
    for at in _matching(rule, events):
        if at > now:
            break
        window.append(at)
        while window[0] < at - rule.within:
            window.popleft()
        if len(window) >= rule.count and (begun is None or at >= begun + rule.within):
            begun = at
    return begun


def bucket(at: datetime) -> str:
    """A burst start as it appears in a task key: UTC, to the second."""
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


# --- input and output ------------------------------------------------------------------------

MAX_CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future an event's time may lie (clocks of outside systems drift)."""
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_PROPS_KEYS = 20
MAX_PROPS_BYTES = 2000
MAX_EVENTS_LOADED = 10_000
"""Events of one lead read for scoring and alerts, newest first; older ones no longer count."""
URL_KINDS = frozenset({BehaviourKind.page_view, BehaviourKind.email_click})
NO_KEY = "give lead_id, customer_id, phone, email or visitor_id"


class BehaviourIn(Input):
    """One behaviour event, keyed by an id, a phone, an email or the website's visitor id."""

    kind: BehaviourKind
    url: Annotated[str, Field(max_length=2000)] | None = None
    """Required for page_view and email_click; an http(s) address."""
    at: AwareDatetime | None = None
    """When it happened (default now); at most 5 minutes in the future."""
    lead_id: DbId | None = None
    customer_id: DbId | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    email: Annotated[str, Field(max_length=254)] | None = None
    visitor_id: Annotated[str, Field(max_length=100)] | None = None
    props: dict[str, Any] = Field(default_factory=dict)
    """Small extra facts (campaign, mail id …): at most 20 keys and 2,000 bytes as JSON."""


class AlertRaised(BaseModel):
    rule: str
    title: str
    task_id: int
    created: bool
    """False when this burst had already raised the task (the same one is returned)."""


class BehaviourRecorded(BaseModel):
    """What the event was attached to, and what that changed."""

    event_id: int
    matched: Literal["lead", "customer", "none"]
    matched_by: str | None
    """lead_id, customer_id, phone, email, visitor_id, contact.phone or contact.email."""
    lead_id: int | None
    customer_id: int | None
    score: int | None
    """The lead's new score; None when the event did not land on a lead."""
    alerts: list[AlertRaised]


@dataclass
class _Subject:
    lead: Lead | None
    customer: Customer | None
    matched_by: str | None


# --- DB: scoring -----------------------------------------------------------------------------


def fields_of(lead: Lead) -> dict[str, Any]:
    """The lead as `score` reads it: its scored columns, its source and `custom.<key>` values."""
    values: dict[str, Any] = {name: getattr(lead, name) for name in SCORED_LEAD_FIELDS}
    values["source"] = lead.source
    values.update({f"custom.{k}": v for k, v in (lead.custom or {}).items()})
    return values


async def _policy(session: AsyncSession) -> ScoringPolicy:
    _version, model = await policies.current(session, kind=policies.PolicyKind.scoring)
    assert isinstance(model, ScoringPolicy)
    return model


async def _lead_events(session: AsyncSession, lead: Lead) -> list[Seen]:
    """Events on the lead, plus unattached ones of its visitor id, phone or email.

    Unattached events are the history of a visitor before anyone knew who they were; they
    count for the lead that later carries the same key without being moved to it.
    """
    unattached = and_(BehaviourEvent.lead_id.is_(None), BehaviourEvent.customer_id.is_(None))
    keys = [
        column == value
        for column, value in (
            (BehaviourEvent.visitor_id, lead.visitor_id),
            (BehaviourEvent.phone, lead.phone),
            (BehaviourEvent.email, lead.email),
        )
        if value
    ]
    where = []
    if lead.id is not None:
        where.append(BehaviourEvent.lead_id == lead.id)
    if keys:
        where.append(and_(unattached, or_(*keys)))
    if not where:
        return []
    rows = await session.execute(
        select(BehaviourEvent.kind, BehaviourEvent.url, BehaviourEvent.at)
        .where(or_(*where))
        .order_by(BehaviourEvent.at.desc(), BehaviourEvent.id.desc())
        .limit(MAX_EVENTS_LOADED)
    )
    return [Seen(*row) for row in rows]


async def _customer_events(session: AsyncSession, customer_id: int) -> list[Seen]:
    """Events on the customer itself (not those that came through one of its leads)."""
    rows = await session.execute(
        select(BehaviourEvent.kind, BehaviourEvent.url, BehaviourEvent.at)
        .where(BehaviourEvent.customer_id == customer_id, BehaviourEvent.lead_id.is_(None))
        .order_by(BehaviourEvent.at.desc(), BehaviourEvent.id.desc())
        .limit(MAX_EVENTS_LOADED)
    )
    return [Seen(*row) for row in rows]


async def rescore(session: AsyncSession, *, lead: Lead) -> int:
    """Recompute and store the lead's score under the scoring policy in force; return it.

    Call it after a lead is created (its visitor's earlier events then count) and after
    anything that changes its fields. It writes only `lead.score`.
    """
    policy = await _policy(session)
    lead.score = score(policy, fields_of(lead), await _lead_events(session, lead))
    return lead.score


# --- DB: recording ---------------------------------------------------------------------------


def _clean(data: BehaviourIn, now: datetime) -> tuple[datetime, str | None, dict[str, Any]]:
    """Time, normalised URL and props of the event, or Invalid naming the field."""
    try:
        at = (data.at or now).astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset has no UTC form
        raise Invalid("must be a time after 2000", field="at") from None
    if at < EARLIEST:
        raise Invalid("must be a time after 2000", field="at")
    if at > now + MAX_CLOCK_SKEW:
        raise Invalid("must not be more than 5 minutes in the future", field="at")
    url = data.url.strip() if data.url and data.url.strip() else None
    if url is None and data.kind in URL_KINDS:
        raise Invalid(f"a {data.kind.value} needs the page's url", field="url")
    if url is not None:
        url = normalize.url(url, field="url")
    if len(data.props) > MAX_PROPS_KEYS:
        raise Invalid(f"at most {MAX_PROPS_KEYS} keys", field="props")
    try:
        size = len(json.dumps(data.props, ensure_ascii=False, allow_nan=False).encode())
    except ValueError:
        raise Invalid("must be plain JSON", field="props") from None
    if size > MAX_PROPS_BYTES:
        raise Invalid(f"at most {MAX_PROPS_BYTES} bytes as JSON", field="props")
    return at, url, data.props


def _lead_service() -> ModuleType:
    """The lead service, imported late: it calls `rescore`, so it may import this module."""
    from domain.lead import service

    return service


async def _customer_visible(session: AsyncSession, *, actor: Actor, customer_id: int) -> Customer:
    """API keys with events:write reach every live customer; people those their role shows."""
    if actor.scopes is None:
        return await customers.get(session, actor=actor, customer_id=customer_id)
    row = await session.scalar(
        select(Customer).where(Customer.id == customer_id, Customer.deleted_at.is_(None))
    )
    if row is None:
        raise NotFound("no such customer", field="customer_id")
    return row


async def _resolve(
    session: AsyncSession,
    *,
    actor: Actor,
    data: BehaviourIn,
    phone: str | None,
    email: str | None,
    visitor_id: str | None,
) -> _Subject:
    """Explicit ids first, then the newest open lead by key, then a customer or contact."""
    leads = _lead_service()
    if data.lead_id is not None:
        lead = await leads.get(session, actor=actor, lead_id=data.lead_id)
        found = None
        if data.customer_id is not None:
            found = await _customer_visible(session, actor=actor, customer_id=data.customer_id)
        elif lead.customer_id is not None:
            found = await session.get(Customer, lead.customer_id)
        return _Subject(lead, found, "lead_id")
    if data.customer_id is not None:
        found = await _customer_visible(session, actor=actor, customer_id=data.customer_id)
        return _Subject(None, found, "customer_id")

    keyed = [
        (name, column, value)
        for name, column, value in (
            ("phone", Lead.phone, phone),
            ("email", Lead.email, email),
            ("visitor_id", Lead.visitor_id, visitor_id),
        )
        if value
    ]
    lead = await session.scalar(
        select(Lead)
        .where(
            or_(*(column == value for _n, column, value in keyed)),
            Lead.status.in_([s.value for s in OPEN_STATUSES]),
            leads.visible(actor),
        )
        .order_by(Lead.id.desc())
        .limit(1)
    )
    if lead is not None:
        by = next(n for n, _c, value in keyed if getattr(lead, n) == value)
        found = await session.get(Customer, lead.customer_id) if lead.customer_id else None
        return _Subject(lead, found, by)

    alive = and_(Customer.deleted_at.is_(None), customers.visible(actor))
    for name, value in (("phone", phone), ("email", email)):
        if not value:
            continue
        found = await session.scalar(
            select(Customer)
            .where(getattr(Customer, name) == value, alive)
            .order_by(Customer.id)
            .limit(1)
        )
        if found is not None:
            return _Subject(None, found, name)
    for name, value in (("phone", phone), ("email", email)):
        if not value:
            continue
        found = await session.scalar(
            select(Customer)
            .join(Contact, Contact.customer_id == Customer.id)
            .where(getattr(Contact, name) == value, alive)
            .order_by(Customer.id)
            .limit(1)
        )
        if found is not None:
            return _Subject(None, found, f"contact.{name}")
    return _Subject(None, None, None)


async def _lock(session: AsyncSession, subject: _Subject) -> None:
    """Serialise events of one lead (or customer) on PostgreSQL, so alerts see every event,
    and re-read the row under the lock (its owner may just have changed).

    SQLite serialises writers anyway; SQLAlchemy emits no FOR UPDATE there.
    """
    fresh = {"populate_existing": True}
    if subject.lead is not None:
        await session.scalar(
            select(Lead)
            .where(Lead.id == subject.lead.id)
            .with_for_update()
            .execution_options(**fresh)
        )
    elif subject.customer is not None:
        await session.scalar(
            select(Customer)
            .where(Customer.id == subject.customer.id)
            .with_for_update()
            .execution_options(**fresh)
        )


async def _raise_alerts(
    session: AsyncSession,
    *,
    actor: Actor,
    policy: ScoringPolicy,
    subject: _Subject,
    events: Sequence[Seen],
    trigger: Seen,
    now: datetime,
) -> list[AlertRaised]:
    """One task per burst for each rule this event made (or keeps) due."""
    if subject.lead is not None:
        entity, entity_id, owner_id = "lead", subject.lead.id, subject.lead.owner_id
    elif subject.customer is not None:
        entity, entity_id, owner_id = "customer", subject.customer.id, subject.customer.owner_id
    else:
        return []
    customer_id = subject.customer.id if subject.customer is not None else None
    raised = []
    for rule in due_alerts(policy, events, now):
        if not rule.matches(trigger.kind, trigger.url):
            continue  # only the rule's own kind of event can start or extend its burst
        began = burst_start(rule, events, now)
        if began is None:  # pragma: no cover - due implies a burst has begun
            continue
        key = f"alert:{rule.name}:{entity}:{entity_id}:{bucket(began)}"
        existing = await session.scalar(task.select_by_key(key))
        row = existing or await task.open_task(
            session,
            new=task.NewTask(
                key=key,
                kind="lead.upsell_alert",
                title=rule.title,
                assignee_id=owner_id,
                customer_id=customer_id,
                ref_entity=entity,
                ref_id=entity_id,
                detail={
                    "rule": rule.name,
                    "kind": rule.kind.value,
                    "url_contains": rule.url_contains,
                    "count": rule.count,
                    "within": rule.within.total_seconds(),
                    "burst_start": began.isoformat(),
                },
            ),
        )
        if existing is None:
            audit.record(
                session,
                actor=actor,
                action="alert",
                entity=entity,
                entity_id=entity_id,
                note={"rule": rule.name, "task_id": row.id, "burst_start": began},
            )
        raised.append(
            AlertRaised(rule=rule.name, title=rule.title, task_id=row.id, created=existing is None)
        )
    return raised


async def record(session: AsyncSession, *, actor: Actor, data: BehaviourIn) -> BehaviourRecorded:
    """Store one behaviour event, attach it to whom it belongs, rescore and raise alerts.

    Attaches to the lead or customer named by id (404 if the actor cannot see it), else the
    newest open lead with that phone, email or visitor id, else a customer (or a contact's
    customer) with that phone or email, else stores it unattached: a visitor's history that
    counts once a lead with the same key arrives.
    """
    actor.require_scope(Scope.events_write)
    now = utcnow()
    at, url, props = _clean(data, now)
    phone = normalize.phone(data.phone) if data.phone and data.phone.strip() else None
    email = normalize.email(data.email) if data.email and data.email.strip() else None
    visitor_id = normalize.text(data.visitor_id)
    if data.lead_id is None and data.customer_id is None and not (phone or email or visitor_id):
        raise Invalid(NO_KEY, field="phone")

    subject = await _resolve(
        session, actor=actor, data=data, phone=phone, email=email, visitor_id=visitor_id
    )
    await _lock(session, subject)
    customer_id = subject.customer.id if subject.customer is not None else None
    event = BehaviourEvent(
        at=at,
        kind=data.kind.value,
        url=url,
        lead_id=subject.lead.id if subject.lead is not None else None,
        customer_id=customer_id,
        visitor_id=visitor_id,
        phone=phone,
        email=email,
        props=props,
    )
    session.add(event)
    await session.flush()

    policy = await _policy(session)
    new_score = None
    if subject.lead is not None:
        events = await _lead_events(session, subject.lead)
        new_score = score(policy, fields_of(subject.lead), events)
        subject.lead.score = new_score
    elif customer_id is not None:
        events = await _customer_events(session, customer_id)
    else:
        events = []
    alerts = await _raise_alerts(
        session,
        actor=actor,
        policy=policy,
        subject=subject,
        events=events,
        trigger=Seen(event.kind, url, at),
        now=max(now, at),
    )
    if customer_id is not None:
        timeline.add(
            session,
            customer_id=customer_id,
            kind=f"behaviour.{data.kind.value}",
            summary=url or data.kind.value,
            actor=actor,
            at=at,
            detail={"event_id": event.id, "url": url, "props": props},
            ref=("lead", subject.lead.id) if subject.lead is not None else None,
        )
    return BehaviourRecorded(
        event_id=event.id,
        matched="lead" if subject.lead else "customer" if subject.customer else "none",
        matched_by=subject.matched_by,
        lead_id=subject.lead.id if subject.lead is not None else None,
        customer_id=customer_id,
        score=new_score,
        alerts=alerts,
    )


async def form_submitted(
    session: AsyncSession, *, lead: Lead, form_slug: str, visitor_id: str | None
) -> int:
    """Note a public form submission as a `form_submit` event on the lead; rescore it."""
    session.add(
        BehaviourEvent(
            kind=BehaviourKind.form_submit.value,
            lead_id=lead.id,
            customer_id=lead.customer_id,
            visitor_id=visitor_id,
            props={"form": form_slug},
        )
    )
    await session.flush()
    return await rescore(session, lead=lead)
