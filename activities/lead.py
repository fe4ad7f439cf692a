"""Side effects of the lead lifecycle: read the pinned policy, assign, mark SLAs, transitions.

Each activity is idempotent: a retry after a commit finds its own work done and reports it.
Domain refusals become non-retryable ApplicationErrors named after the domain error class.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.unit import unit
from domain import assignment, audit, customer, policy, timeline
from domain.access import WORKFLOW, Actor, Role
from domain.calendar import BusinessCalendar
from domain.db import utcnow
from domain.deal import Deal
from domain.errors import Conflict
from domain.follow_up import FollowUp
from domain.lead.lifecycle import (
    Action,
    AssignRequest,
    LeadPlan,
    LeadStart,
    Ownership,
    SlaMark,
    TransitionRequest,
    TransitionResult,
)
from domain.lead.models import Lead, LeadClaim, LeadStatus
from domain.lead.rules import LeadPolicy, LeadSlaPolicy, PoolPolicy
from domain.policy import PolicyKind
from domain.settings import Settings
from domain.user import Team, User

ENTITY = "lead"



class LeadActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    def _unit(self) -> AbstractAsyncContextManager[AsyncSession]:
        return unit(self.sessions)

    async def _lead(self, session: AsyncSession, lead_id: int) -> Lead:
        lead = await session.get(Lead, lead_id, with_for_update=True)
        if lead is None:
            # The API starts the workflow just before it commits: wait for the row (retryable).
            raise ApplicationError(f"lead {lead_id} is not visible yet")
        return lead

    @activity.defn(name="lead_load_plan")
    async def load_plan(self, start: LeadStart) -> LeadPlan:
        async with self._unit() as session:
            lead = await self._lead(session, start.lead_id)
            sla_version, sla = await policy.current(session, kind=PolicyKind.lead_sla)
            lead_version, rules = await policy.current(session, kind=PolicyKind.lead)
            assert isinstance(sla, LeadSlaPolicy) and isinstance(rules, LeadPolicy)
            versions = {"lead_sla": sla_version, "lead": lead_version}
            lead.policy_versions = versions
            return LeadPlan(
                chain=sla.chain_for(source=lead.source, priority=lead.priority),
                cadence_seconds=sla.cadence.total_seconds(),
                cadence_business_hours=sla.cadence_business_hours,
                disqualify_reasons=list(rules.disqualify_reasons),
                versions=versions,
                company=lead.company,
                contact=lead.contact_name,
            )

    async def _ownership(
        self, session: AsyncSession, owner_id: int | None, rule: str | None = None
    ) -> Ownership:
        if owner_id is None:
            return Ownership(owner_id=None)
        owner = await session.get(User, owner_id)
        team = await session.get(Team, owner.team_id) if owner and owner.team_id else None
        calendar_name = team.calendar if team is not None else "default"
        _version, calendar = await policy.current(
            session, kind=PolicyKind.calendar, name=calendar_name
        )
        assert isinstance(calendar, BusinessCalendar)
        manager = team.manager_id if team and team.manager_id != owner_id else None
        return Ownership(
            owner_id=owner_id,
            team_id=team.id if team else None,
            manager_id=manager,
            rule=rule,
            calendar=calendar,
        )

    @activity.defn(name="lead_assign")
    async def assign(self, request: AssignRequest) -> Ownership:
        """The matched customer's active owner, else the assignment rules, else the pool."""
        key = f"{activity.info().workflow_id}/{activity.info().activity_id}"
        async with self._unit() as session:
            lead = await self._lead(session, request.lead_id)
            if lead.assignment_key == key:
                return await self._ownership(session, lead.owner_id, lead.assigned_rule)
            owner_id, rule = await self._choose(session, lead, request)
            before = {"owner_id": lead.owner_id, "status": lead.status}
            lead.assignment_key = key
            if owner_id is None:
                self._to_pool(lead)
            else:
                lead.owner_id, lead.assigned_rule = owner_id, rule
                lead.assigned_at = utcnow()
                lead.status = LeadStatus.assigned.value
            actor = WORKFLOW
            audit.record(
                session,
                actor=actor,
                action="assign",
                entity=ENTITY,
                entity_id=lead.id,
                before=before,
                after={"owner_id": lead.owner_id, "status": lead.status},
                note={"rule": rule, "reason": request.reason},
            )
            self._on_timeline(session, lead, actor, f"lead.{lead.status}", rule or "pool")
            return await self._ownership(session, owner_id, rule)

    async def _choose(
        self, session: AsyncSession, lead: Lead, request: AssignRequest
    ) -> tuple[int | None, str | None]:
        hinted = (lead.match or {}).get("owner_id")
        if request.reason == "new" and hinted and hinted not in request.exclude:
            owner = await session.get(User, hinted)
            if owner is not None and owner.active and not owner.on_leave:
                return owner.id, "existing customer owner"
        _v, rules = await policy.current(session, kind=PolicyKind.assignment)
        _v, pool = await policy.current(session, kind=PolicyKind.pool)
        assert isinstance(pool, PoolPolicy)
        choice = await assignment.assign(
            session,
            lead=lead,
            policy=rules,
            open_lead_cap=pool.open_lead_cap,
            exclude=set(request.exclude),
        )
        if choice is None:
            return None, None
        return choice.user_id, choice.rule

    @staticmethod
    def _to_pool(lead: Lead) -> None:
        if lead.owner_id is not None:
            lead.pooled_from_id = lead.owner_id
        lead.owner_id = None
        lead.status = LeadStatus.pooled.value
        lead.pooled_at = utcnow()
        lead.sla_due_at, lead.sla_next_action = None, None

    @staticmethod
    def _on_timeline(
        session: AsyncSession, lead: Lead, actor: Actor, kind: str, summary: str
    ) -> None:
        if lead.customer_id is not None:
            timeline.add(
                session,
                customer_id=lead.customer_id,
                kind=kind,
                actor=actor,
                summary=summary,
                ref=(ENTITY, lead.id),
            )

    @activity.defn(name="lead_mark_sla")
    async def mark_sla(self, mark: SlaMark) -> None:
        async with self._unit() as session:
            lead = await self._lead(session, mark.lead_id)
            if mark.breached is None:
                lead.sla_due_at, lead.sla_next_action = mark.due_at, mark.next_action
            elif mark.breached not in lead.sla_breaches:
                lead.sla_breaches = [*lead.sla_breaches, mark.breached]

    @activity.defn(name="lead_transition")
    async def transition(self, request: TransitionRequest) -> TransitionResult:
        async with self._unit() as session:
            lead = await self._lead(session, request.lead_id)
            actor = request.caller.as_actor()
            before = {"status": lead.status, "owner_id": lead.owner_id}
            await getattr(self, f"_{request.action.value}")(session, lead, request, actor)
            after = {"status": lead.status, "owner_id": lead.owner_id}
            if after != before or request.action is Action.contact:
                audit.record(
                    session,
                    actor=actor,
                    action=request.action.value,
                    entity=ENTITY,
                    entity_id=lead.id,
                    before=before,
                    after=after,
                    note={"note": request.note} if request.note else None,
                )
                self._on_timeline(
                    session,
                    lead,
                    actor,
                    f"lead.{request.action.value}",
                    # The kind names the step (pages translate it); the summary: the person's words.
                    request.note or (request.disqualify.reason if request.disqualify else ""),
                )
            return TransitionResult(
                lead_id=lead.id,
                status=lead.status,
                deal_id=lead.deal_id,
                customer_id=lead.customer_id,
                ownership=await self._ownership(session, lead.owner_id, lead.assigned_rule),
            )

    async def _contact(
        self, _s: AsyncSession, lead: Lead, _r: TransitionRequest, _a: Actor
    ) -> None:
        now = utcnow()
        if lead.status == LeadStatus.assigned.value:
            lead.status = LeadStatus.contacted.value
            lead.first_contacted_at = now
            lead.sla_due_at, lead.sla_next_action = None, None
        lead.last_activity_at = now

    async def _qualify(
        self, _s: AsyncSession, lead: Lead, _r: TransitionRequest, _a: Actor
    ) -> None:
        lead.status = LeadStatus.qualified.value
        lead.last_activity_at = utcnow()

    async def _disqualify(
        self, _s: AsyncSession, lead: Lead, request: TransitionRequest, _a: Actor
    ) -> None:
        assert request.disqualify is not None
        lead.status = LeadStatus.disqualified.value
        lead.disqualify_reason = request.disqualify.reason
        lead.sla_due_at, lead.sla_next_action = None, None

    async def _pool(self, _s: AsyncSession, lead: Lead, _r: TransitionRequest, _a: Actor) -> None:
        if lead.status != LeadStatus.pooled.value:
            self._to_pool(lead)

    async def _reassign(
        self, session: AsyncSession, lead: Lead, request: TransitionRequest, _a: Actor
    ) -> None:
        assert request.reassign is not None
        owner = await session.get(User, request.reassign.owner_id)
        if owner is None or not owner.active or owner.role not in (Role.sales, Role.sales_manager):
            raise ApplicationError(
                "no such active sales user",
                {"field": "owner_id"},
                type="Invalid",
                non_retryable=True,
            )
        lead.owner_id = owner.id
        lead.assigned_rule = "by hand"
        lead.assigned_at = utcnow()
        if lead.status == LeadStatus.pooled.value:
            lead.status = LeadStatus.assigned.value

    async def _claim(
        self, session: AsyncSession, lead: Lead, request: TransitionRequest, actor: Actor
    ) -> None:
        key = f"{activity.info().workflow_id}/{activity.info().activity_id}"
        if await session.scalar(select(LeadClaim.id).where(LeadClaim.key == key)) is not None:
            return
        await self._check_claim(session, lead, actor)
        session.add(LeadClaim(lead_id=lead.id, user_id=actor.user_id, key=key))
        lead.owner_id = actor.user_id
        lead.assigned_rule = "claimed from pool"
        lead.assigned_at = utcnow()
        lead.status = LeadStatus.assigned.value

    async def _check_claim(self, session: AsyncSession, lead: Lead, actor: Actor) -> None:
        _v, pool = await policy.current(session, kind=PolicyKind.pool)
        assert isinstance(pool, PoolPolicy) and actor.user_id is not None
        now = utcnow()
        if (
            lead.pooled_from_id == actor.user_id
            and lead.pooled_at is not None
            and now - lead.pooled_at < pool.cooldown
        ):
            free_at = (lead.pooled_at + pool.cooldown).isoformat(timespec="minutes")
            raise Conflict(
                f"this lead was taken from you; you may claim it again from {free_at}",
                field="cooldown",
            )
        if await assignment.open_lead_count(session, user_id=actor.user_id) >= pool.open_lead_cap:
            raise Conflict(
                f"you already have {pool.open_lead_cap} open leads", field="open_lead_cap"
            )
        zone = ZoneInfo(self.settings.timezone)
        midnight = datetime.combine(now.astimezone(zone).date(), time(0), zone)
        today = await session.scalar(
            select(func.count(LeadClaim.id)).where(
                LeadClaim.user_id == actor.user_id, LeadClaim.claimed_at >= midnight
            )
        )
        if (today or 0) >= pool.daily_claim_limit:
            raise Conflict(
                f"you have claimed {pool.daily_claim_limit} leads today", field="daily_claim_limit"
            )

    async def _convert(
        self, session: AsyncSession, lead: Lead, request: TransitionRequest, actor: Actor
    ) -> None:
        """Create or link the customer and contact, open a deal, and close the lead."""
        if lead.status == LeadStatus.converted.value:
            return
        wish = request.convert
        owner = await self._convert_customer(
            session, lead, actor, wish.customer_id if wish else None
        )
        contact_id = lead.contact_id or await self._convert_contact(session, lead, owner, actor)
        deal = Deal(
            name=(
                wish.deal_name
                if wish and wish.deal_name
                else f"{owner.name} · {lead.product_interest or '新商机'}"
            ),
            customer_id=owner.id,
            contact_id=contact_id,
            lead_id=lead.id,
            owner_id=lead.owner_id,
            amount=_amount(wish.amount if wish else None),
        )
        session.add(deal)
        await session.flush()
        await self._bring_history(session, lead, owner.id, actor)
        lead.customer_id, lead.contact_id, lead.deal_id = owner.id, contact_id, deal.id
        lead.status = LeadStatus.converted.value
        lead.converted_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="create",
            entity="deal",
            entity_id=deal.id,
            after={"name": deal.name, "customer_id": owner.id, "lead_id": lead.id},
        )

    async def _bring_history(
        self, session: AsyncSession, lead: Lead, customer_id: int, actor: Actor
    ) -> None:
        """The lead's story joins the customer's timeline: its arrival and every contact."""
        if lead.customer_id != customer_id:
            timeline.add(
                session,
                customer_id=customer_id,
                kind="lead.created",
                actor=actor,
                at=lead.created_at,
                summary=lead.message or lead.source or "",
                ref=(ENTITY, lead.id),
            )
        notes = await session.scalars(
            select(FollowUp).where(FollowUp.lead_id == lead.id, FollowUp.customer_id.is_(None))
        )
        for note in notes:
            note.customer_id = customer_id
            timeline.add(
                session,
                customer_id=customer_id,
                kind=f"follow_up.{note.kind}",
                actor=actor,
                at=note.at,
                summary=note.summary[:200],
                ref=("follow_up", note.id),
                detail={"lead_id": lead.id},
            )

    async def _convert_customer(
        self, session: AsyncSession, lead: Lead, actor: Actor, chosen: int | None
    ) -> customer.Customer:
        if chosen or lead.customer_id:
            return await customer.get(session, actor=actor, customer_id=chosen or lead.customer_id)
        data = customer.CustomerCreate(
            kind=customer.Kind.company if lead.company else customer.Kind.person,
            name=lead.company or lead.contact_name or lead.phone or lead.email or f"#{lead.id}",
            credit_code=lead.credit_code if lead.company else None,
            phone=None if lead.company else lead.phone,
            email=None if lead.company else lead.email,
            wechat_id=None if lead.company else lead.wechat_id,
            province=lead.province,
            city=lead.city,
            industry=lead.industry if lead.company else None,
            source=lead.source,
            owner_id=lead.owner_id,
            stage=customer.Stage.prospect,
        )
        try:
            return await customer.create(session, actor=actor, data=data)
        except Conflict as duplicate:
            return await customer.get(
                session, actor=actor, customer_id=duplicate.extra["existing_id"]
            )

    async def _convert_contact(
        self, session: AsyncSession, lead: Lead, owner: customer.Customer, actor: Actor
    ) -> int | None:
        if owner.kind != customer.Kind.company.value or not lead.contact_name:
            return None
        contact = await customer.add_contact(
            session,
            actor=actor,
            customer_id=owner.id,
            data=customer.ContactCreate(
                name=lead.contact_name,
                mobile=lead.phone,
                email=lead.email,
                wechat_id=lead.wechat_id,
            ),
        )
        return contact.id


def _amount(text: str | None) -> Decimal | None:
    if not text:
        return None
    try:
        value = Decimal(text.replace(",", ""))
    except InvalidOperation:
        raise ApplicationError(
            "amount must be a number", {"field": "amount"}, type="Invalid", non_retryable=True
        ) from None
    if value < 0 or value != value.quantize(Decimal("0.01")):
        raise ApplicationError(
            "amount must be positive with at most 2 decimals",
            {"field": "amount"},
            type="Invalid",
            non_retryable=True,
        )
    return value
