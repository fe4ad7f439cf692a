"""Side effects of the ticket lifecycle: pinned policy, dispatch, SLA marks, transitions, and
mail to the requester (public replies, the survey and its reminder).

Each activity is idempotent: a retry after a commit finds its own work done and reports it; a
customer mail is claimed in the delivery log before it is sent, under a key of its own.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.mail import compose, message_id, send_mail
from activities.notify import Templates
from activities.unit import unit
from domain import audit, notification, policy
from domain.access import WORKFLOW, Actor, Role
from domain.calendar import BusinessCalendar
from domain.customer import Customer
from domain.db import transaction, utcnow
from domain.notification import Channel, DeliveryStatus, Notice
from domain.policy import PolicyKind
from domain.settings import Settings
from domain.ticket import dispatch as dispatching
from domain.ticket import service, survey
from domain.ticket.lifecycle import (
    Action,
    DispatchRequest,
    MailRequest,
    Ownership,
    SlaMark,
    TicketPlan,
    TicketStart,
    TransitionRequest,
    TransitionResult,
)
from domain.ticket.mail import tag
from domain.ticket.models import Priority, Ticket, TicketComment, TicketStatus, TicketSurvey
from domain.ticket.rules import DispatchPolicy, TicketPolicy, TicketSlaPolicy, fold
from domain.user import Team, User

ENTITY = "ticket"
HIGHER = {Priority.P4: Priority.P3, Priority.P3: Priority.P2, Priority.P2: Priority.P1}


class TicketActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self.templates = Templates(settings)

    def _unit(self) -> AbstractAsyncContextManager[AsyncSession]:
        return unit(self.sessions)

    @staticmethod
    async def _ticket(session: AsyncSession, ticket_id: int) -> Ticket:
        ticket = await session.get(Ticket, ticket_id, with_for_update=True)
        if ticket is None:
            # The API starts the workflow just before it commits: wait for the row (retryable).
            raise ApplicationError(f"ticket {ticket_id} is not visible yet")
        return ticket

    @staticmethod
    def _key() -> str:
        return f"{activity.info().workflow_id}/{activity.info().activity_id}"

    @activity.defn(name="ticket_load_plan")
    async def load_plan(self, start: TicketStart) -> TicketPlan:
        async with self._unit() as session:
            ticket = await self._ticket(session, start.ticket_id)
            sla_version, sla = await policy.current(session, kind=PolicyKind.ticket_sla)
            rules_version, rules = await policy.current(session, kind=PolicyKind.ticket)
            assert isinstance(sla, TicketSlaPolicy) and isinstance(rules, TicketPolicy)
            customer = (
                await session.get(Customer, ticket.customer_id) if ticket.customer_id else None
            )
            versions = {"ticket_sla": sla_version, "ticket": rules_version}
            ticket.policy_versions = versions
            return TicketPlan(
                terms=sla.terms_for(
                    priority=ticket.priority,
                    tier=customer.tier if customer else None,
                ),
                warn_at=sla.warn_at,
                on_breach={t: list(a) for t, a in sla.on_breach.items()},
                reopen_within_seconds=rules.reopen_within.total_seconds(),
                survey_reminder_after_seconds=rules.survey_reminder_after.total_seconds(),
                complaint=fold(ticket.type) in {fold(t) for t in rules.complaint_types},
                customer_owner_id=customer.owner_id if customer else None,
                subject=ticket.subject,
                versions=versions,
            )

    async def _ownership(self, session: AsyncSession, ticket: Ticket) -> Ownership:
        team = await session.get(Team, ticket.team_id) if ticket.team_id else None
        _version, calendar = await policy.current(
            session, kind=PolicyKind.calendar, name=team.calendar if team else "default"
        )
        assert isinstance(calendar, BusinessCalendar)
        return Ownership(
            assignee_id=ticket.assignee_id,
            team_id=ticket.team_id,
            supervisor_id=await service.supervisor_of(session, ticket),
            rule=ticket.dispatch_rule,
            calendar=calendar,
        )

    @activity.defn(name="ticket_dispatch")
    async def dispatch(self, request: DispatchRequest) -> Ownership:
        """Team and agent by the dispatch rules; a ticket nobody can take waits, unassigned."""
        key = self._key()
        async with self._unit() as session:
            ticket = await self._ticket(session, request.ticket_id)
            if ticket.assignment_key == key:
                return await self._ownership(session, ticket)
            _v, rules = await policy.current(session, kind=PolicyKind.dispatch)
            assert isinstance(rules, DispatchPolicy)
            chosen = await dispatching.dispatch(
                session, ticket=ticket, policy=rules, exclude=set(request.exclude)
            )
            before = {
                "assignee_id": ticket.assignee_id,
                "team_id": ticket.team_id,
                "status": ticket.status,
            }
            ticket.assignment_key = key
            if chosen is not None:
                ticket.team_id, ticket.dispatch_rule = chosen.team_id, chosen.rule
                ticket.assignee_id = chosen.user_id
            if ticket.assignee_id is not None and ticket.status == TicketStatus.new.value:
                ticket.status = TicketStatus.assigned.value
            after = {
                "assignee_id": ticket.assignee_id,
                "team_id": ticket.team_id,
                "status": ticket.status,
            }
            audit.record(
                session,
                actor=WORKFLOW,
                action="dispatch",
                entity=ENTITY,
                entity_id=ticket.id,
                before=before,
                after=after,
                note={"rule": ticket.dispatch_rule, "reason": request.reason},
            )
            service.on_timeline(
                session,
                ticket,
                WORKFLOW,
                "ticket.assigned",
                ticket.dispatch_rule or "",
            )
            return await self._ownership(session, ticket)

    @activity.defn(name="ticket_mark_sla")
    async def mark_sla(self, mark: SlaMark) -> None:
        async with self._unit() as session:
            ticket = await self._ticket(session, mark.ticket_id)
            ticket.sla = mark.clock.model_dump(mode="json")
            ticket.sla_due_at, ticket.sla_target = mark.due_at, mark.target
            ticket.first_response_due_at = mark.first_response_due_at
            ticket.next_response_due_at = mark.next_response_due_at
            ticket.resolution_due_at = mark.resolution_due_at
            ticket.sla_paused = mark.clock.paused_at is not None
            ticket.sla_paused_seconds = mark.clock.paused_seconds
            ticket.sla_remaining_seconds = mark.remaining_seconds
            if mark.warned and mark.warned not in ticket.sla_warnings:
                ticket.sla_warnings = [*ticket.sla_warnings, mark.warned]
            if mark.breached and mark.breached not in ticket.sla_breaches:
                ticket.sla_breaches = [*ticket.sla_breaches, mark.breached]
                ticket.sla_breached = True
                audit.record(
                    session,
                    actor=WORKFLOW,
                    action="sla_breach",
                    entity=ENTITY,
                    entity_id=ticket.id,
                    note={"breach": mark.breached},
                )
                service.on_timeline(session, ticket, WORKFLOW, "ticket.sla_breach", mark.breached)

    @activity.defn(name="ticket_transition")
    async def transition(self, request: TransitionRequest) -> TransitionResult:
        async with self._unit() as session:
            ticket = await self._ticket(session, request.ticket_id)
            actor = request.caller.as_actor()
            fields = ("status", "assignee_id", "team_id", "priority")
            before = {f: getattr(ticket, f) for f in fields}
            comment_id = await getattr(self, f"_{request.action.value}")(
                session, ticket, request, actor
            )
            after = {f: getattr(ticket, f) for f in fields}
            first = request.action is Action.reply and ticket.public_replies == 1
            if after != before or request.action is Action.reply:
                audit.record(
                    session,
                    actor=actor,
                    action=request.action.value,
                    entity=ENTITY,
                    entity_id=ticket.id,
                    before=before,
                    after=after,
                    note={"note": request.note, "comment_id": comment_id},
                )
                if request.action not in (Action.reply, Action.customer_reply):
                    service.on_timeline(
                        session,
                        ticket,
                        actor,
                        f"ticket.{request.action.value}",
                        request.note or "",
                    )
            return TransitionResult(
                ticket_id=ticket.id,
                status=ticket.status,
                priority=ticket.priority,
                ownership=await self._ownership(session, ticket),
                comment_id=comment_id,
                first_response=first,
            )

    async def _start(self, _s: AsyncSession, ticket: Ticket, _r: Any, _a: Actor) -> None:
        ticket.status = TicketStatus.in_progress.value

    async def _reply(
        self, session: AsyncSession, ticket: Ticket, request: TransitionRequest, actor: Actor
    ) -> int:
        key = self._key()
        done = await session.scalar(
            select(TicketComment.id).where(
                TicketComment.message_id == message_id(self.settings, key)
            )
        )
        if done is not None:  # a retry after the commit: the reply is stored already
            return done
        assert request.body is not None
        comment = TicketComment(
            ticket_id=ticket.id,
            public=True,
            author_id=actor.user_id,
            author_name=actor.name,
            body=request.body,
            message_id=message_id(self.settings, key),
        )
        session.add(comment)
        await session.flush()
        ticket.public_replies += 1
        if ticket.first_response_at is None:
            ticket.first_response_at = utcnow()
            ticket.first_response_seconds = request.first_response_seconds
        ticket.status = (
            TicketStatus.waiting_on_customer.value
            if request.wait_for_customer
            else TicketStatus.in_progress.value
        )
        service.on_timeline(session, ticket, actor, "ticket.reply", request.body[:200])
        return comment.id

    async def _wait(self, _s: AsyncSession, ticket: Ticket, _r: Any, _a: Actor) -> None:
        ticket.status = TicketStatus.waiting_on_customer.value

    async def _customer_reply(self, _s: AsyncSession, ticket: Ticket, _r: Any, _a: Actor) -> None:
        if ticket.status == TicketStatus.waiting_on_customer.value:
            ticket.status = TicketStatus.in_progress.value
        elif ticket.status == TicketStatus.resolved.value:
            self._reopened(ticket)

    @staticmethod
    def _reopened(ticket: Ticket) -> None:
        ticket.status = (
            TicketStatus.in_progress.value if ticket.assignee_id else TicketStatus.new.value
        )
        ticket.reopened += 1
        ticket.first_contact_resolution = False

    async def _resolve(
        self, _s: AsyncSession, ticket: Ticket, request: TransitionRequest, _a: Actor
    ) -> None:
        ticket.status = TicketStatus.resolved.value
        ticket.resolved_at = utcnow()
        ticket.resolution_seconds = request.resolution_seconds
        ticket.resolution_note = request.note
        ticket.first_contact_resolution = ticket.public_replies <= 1 and ticket.reopened == 0
        ticket.sla_due_at, ticket.sla_target = None, None

    async def _reopen(self, _s: AsyncSession, ticket: Ticket, _r: Any, _a: Actor) -> None:
        if ticket.status == TicketStatus.resolved.value:
            self._reopened(ticket)

    async def _close(self, _s: AsyncSession, ticket: Ticket, _r: Any, _a: Actor) -> None:
        if ticket.status != TicketStatus.closed.value:
            ticket.status = TicketStatus.closed.value
            ticket.closed_at = utcnow()

    async def _reassign(
        self, session: AsyncSession, ticket: Ticket, request: TransitionRequest, _a: Actor
    ) -> None:
        agent = await session.get(User, request.assignee_id) if request.assignee_id else None
        if (
            agent is None
            or not agent.active
            or agent.role not in (Role.service.value, Role.service_manager.value)
        ):
            raise ApplicationError(
                "no such active service agent",
                {"field": "assignee_id"},
                type="Invalid",
                non_retryable=True,
            )
        ticket.assignee_id, ticket.team_id = agent.id, agent.team_id or ticket.team_id
        ticket.dispatch_rule = "by hand"
        if ticket.status == TicketStatus.new.value:
            ticket.status = TicketStatus.assigned.value

    async def _raise_priority(self, _s: AsyncSession, ticket: Ticket, _r: Any, _a: Actor) -> None:
        ticket.priority = HIGHER.get(Priority(ticket.priority), Priority.P1).value

    # --- mail to the requester -----------------------------------------------------------

    @activity.defn(name="ticket_mail_reply")
    async def mail_reply(self, request: MailRequest) -> str:
        """The public reply to the requester, threaded under the ticket's first mail."""
        async with self.sessions() as session:
            ticket = await session.get(Ticket, request.ticket_id)
            comment = await session.get(TicketComment, request.comment_id)
        assert ticket is not None and comment is not None
        return await self._mail(
            key=f"{activity.info().workflow_id}/reply/{comment.id}",
            ticket=ticket,
            template="ticket.reply",
            params={"body": comment.body, "agent": comment.author_name},
            message_key=comment.message_id,
        )

    @activity.defn(name="ticket_send_survey")
    async def send_survey(self, request: MailRequest) -> str:
        """One survey per resolution round, with a signed link valid for the policy's time."""
        key = f"{activity.info().workflow_id}/survey/{request.round}"
        async with transaction(self.sessions) as session:
            ticket = await self._ticket(session, request.ticket_id)
            row = await session.scalar(select(TicketSurvey).where(TicketSurvey.key == key))
            if row is None:
                _v, rules = await policy.current(session, kind=PolicyKind.ticket)
                assert isinstance(rules, TicketPolicy)
                row = TicketSurvey(
                    ticket_id=ticket.id,
                    key=key,
                    sent_to=ticket.requester_email,
                    expires_at=utcnow() + rules.survey_valid_for,
                )
                session.add(row)
                await session.flush()
                service.on_timeline(session, ticket, WORKFLOW, "ticket.survey_sent", "")
        return await self._survey_mail(key, ticket, row, "ticket.survey")

    @activity.defn(name="ticket_remind_survey")
    async def remind_survey(self, request: MailRequest) -> str:
        """One reminder, only while the survey is unanswered."""
        key = f"{activity.info().workflow_id}/survey/{request.round}"
        async with transaction(self.sessions) as session:
            ticket = await self._ticket(session, request.ticket_id)
            row = await session.scalar(select(TicketSurvey).where(TicketSurvey.key == key))
            if row is None or row.answered_at is not None:
                return "answered"
            row.reminded_at = row.reminded_at or utcnow()
        return await self._survey_mail(f"{key}/reminder", ticket, row, "ticket.survey_reminder")

    async def _survey_mail(self, key: str, ticket: Ticket, row: TicketSurvey, template: str) -> str:
        token = survey.link_token(
            self.settings.signing_key(), survey_id=row.id, expires_at=row.expires_at
        )
        return await self._mail(
            key=key,
            ticket=ticket,
            template=template,
            params={"path": f"/surveys/{token}", "expires": row.expires_at.isoformat()},
            message_key=key,
        )

    async def _mail(
        self,
        *,
        key: str,
        ticket: Ticket,
        template: str,
        params: dict[str, str | int | None],
        message_key: str | None,
    ) -> str:
        """Send once per key through the delivery log; "sent", "skipped …" or "refused …"."""
        async with transaction(self.sessions) as session:
            row = await notification.claim(
                session, key=key, channel=Channel.email, recipient_id=None, team_id=None
            )
            if notification.is_done(row):
                return row.status
            skip = None
            if not ticket.requester_email:
                skip = "the requester has no email address"
            elif self.settings.smtp_host is None:
                skip = "SMTP is not configured"
            if skip is not None:
                await notification.finish(
                    session,
                    delivery_id=row.id,
                    status=DeliveryStatus.skipped,
                    detail={"reason": skip},
                )
                return f"skipped: {skip}"
            delivery_id = row.id
        assert ticket.requester_email is not None
        notice = Notice(
            key=key,
            template=template,
            params={
                **params,
                "ticket_id": ticket.id,
                "tag": tag(ticket.id),
                "subject": ticket.subject,
            },
        )
        name = ticket.requester_name or ticket.requester_email
        mail = self.templates.mail(notice, self.settings.default_locale, name)
        message = compose(
            self.settings,
            key=message_key or key,
            to_name=name,
            to_address=ticket.requester_email,
            subject=mail.subject,
            text=mail.text,
            html=mail.html,
        )
        if message_key and message_key.startswith("<"):
            message.replace_header("Message-ID", message_key)
        message.replace_header("From", self.settings.support_address)
        message["Reply-To"] = self.settings.support_address
        if ticket.thread_id:
            message["In-Reply-To"] = ticket.thread_id
            message["References"] = ticket.thread_id
        try:
            await send_mail(self.settings, message)
        except notification.Rejected as refused:
            async with transaction(self.sessions) as session:
                await notification.finish(
                    session,
                    delivery_id=delivery_id,
                    status=DeliveryStatus.failed,
                    detail={"reason": str(refused)},
                )
            return f"refused: {refused}"
        async with transaction(self.sessions) as session:
            await notification.finish(
                session,
                delivery_id=delivery_id,
                status=DeliveryStatus.sent,
                detail={"to": ticket.requester_email, "message_id": message["Message-ID"]},
            )
        return "sent"
