"""Side effects of approval chains: choose the chain, ask people, record answers, conclude.

Every activity is idempotent: the rows of a step are found again by (subject, round, step), an
answer by its approval row, a conclusion by the subject's status.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.notify import Templates
from activities.unit import unit
from domain import audit, policy, task, timeline, user
from domain.access import WORKFLOW, Actor, Role, Source
from domain.approval import (
    Approval,
    ApprovalDecision,
    ApprovalPlan,
    ApprovalPolicy,
    ApprovalStatus,
    Asked,
    Assignee,
    AssigneeKind,
    Conclude,
    Concluded,
    Escalate,
    EscalateTo,
    OpenStep,
    Outcome,
    PlanRequest,
    Record,
    StepOpened,
    Subject,
    SubjectFacts,
)
from domain.calendar import ALWAYS_OPEN, BusinessCalendar
from domain.contract.models import Contract, ContractStatus
from domain.contract.rules import ContractPolicy
from domain.customer.models import Customer
from domain.deal.models import Deal, DealKind
from domain.notification import Notice
from domain.policy import PolicyKind
from domain.quote import service as quotes
from domain.quote.models import Quote, QuoteStatus
from domain.settings import Settings
from domain.user import User

STATUS_OF = {
    ApprovalDecision.approve: ApprovalStatus.approved,
    ApprovalDecision.reject: ApprovalStatus.rejected,
    ApprovalDecision.request_changes: ApprovalStatus.changes_requested,
}


async def _manager_id(session: AsyncSession, user_id: int | None) -> int | None:
    if user_id is None:
        return None
    manager = await user.manager_of(session, user_id=user_id)
    return manager.id if manager is not None else None


class ApprovalActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self.templates = Templates(settings)

    # --- the subject ----------------------------------------------------------------------

    async def _subject(
        self, session: AsyncSession, subject: Subject, subject_id: int
    ) -> Contract | Quote:
        model = Contract if subject is Subject.contract else Quote
        row = await session.get(model, subject_id, with_for_update=True)
        if row is None:
            # The API starts the workflow just before it commits: wait for the row (retryable).
            raise ApplicationError(f"{subject.value} {subject_id} is not visible yet")
        return row

    async def _facts(self, session: AsyncSession, row: Contract | Quote) -> SubjectFacts:
        owner_customer = await session.get(Customer, row.customer_id)
        if isinstance(row, Contract):
            return SubjectFacts(
                subject=Subject.contract,
                amount=row.amount,
                discount_pct=row.discount_pct,
                contract_type=row.contract_type,
                customer_tier=owner_customer.tier if owner_customer else None,
            )
        return SubjectFacts(
            subject=Subject.quote,
            amount=row.total,
            discount_pct=row.discount_pct,
            customer_tier=owner_customer.tier if owner_customer else None,
        )

    async def _owner_of(self, session: AsyncSession, row: Contract | Quote) -> int | None:
        if isinstance(row, Contract):
            return row.owner_id
        deal = await session.get(Deal, row.deal_id)
        return deal.owner_id if deal is not None else row.created_by

    @staticmethod
    def _title(row: Contract | Quote) -> str:
        return f"{row.number} {row.title}" if isinstance(row, Contract) else row.number

    @activity.defn(name="approval_plan")
    async def plan(self, request: PlanRequest) -> ApprovalPlan:
        """Choose this round's chain from the approval policy in force; mark it in approval."""
        async with unit(self.sessions) as session:
            row = await self._subject(session, request.subject, request.subject_id)
            version, rules = await policy.current(session, kind=PolicyKind.approval)
            assert isinstance(rules, ApprovalPolicy)
            chain = rules.chain_for(await self._facts(session, row))
            owner_id = await self._owner_of(session, row)
            calendar = ALWAYS_OPEN
            if rules.business_hours:
                _v, calendar = await policy.current(session, kind=PolicyKind.calendar)
                assert isinstance(calendar, BusinessCalendar)
            if isinstance(row, Contract) and row.round != request.round:
                before = {"status": row.status, "round": row.round}
                row.round, row.status = request.round, ContractStatus.in_approval.value
                row.approval_version = version
                row.approval_chain = chain.name if chain else None
                audit.record(
                    session,
                    actor=WORKFLOW,
                    action="submit",
                    entity="contract",
                    entity_id=row.id,
                    before=before,
                    after={"status": row.status, "round": row.round},
                    note={"chain": row.approval_chain, "policy_version": version},
                )
                timeline.add(
                    session,
                    customer_id=row.customer_id,
                    kind="contract.submitted",
                    actor=WORKFLOW,
                    summary=self._title(row),
                    ref=("contract", row.id),
                )
            return ApprovalPlan(
                subject=request.subject,
                subject_id=request.subject_id,
                owner_id=owner_id,
                manager_id=await _manager_id(session, owner_id),
                title=self._title(row),
                chain=chain.name if chain else None,
                steps=list(chain.steps) if chain else [],
                version=version,
                calendar=calendar,
                round=request.round,
                link_ttl_seconds=rules.link_ttl.total_seconds(),
            )

    # --- asking people --------------------------------------------------------------------

    async def _candidates(
        self, session: AsyncSession, seat: Assignee, owner_id: int | None
    ) -> list[tuple[User, int]]:
        """Who may fill the seat, as (person asked, approver the chain named): an approver on
        leave is replaced by their delegate."""
        if seat.kind is AssigneeKind.user:
            found = [await session.get(User, seat.user_id)]
        elif seat.kind is AssigneeKind.requester_manager:
            manager_id = await _manager_id(session, owner_id)
            found = [await session.get(User, manager_id)] if manager_id else []
        else:
            where = (
                User.role == seat.role.value
                if seat.kind is AssigneeKind.role and seat.role
                else User.approver_group == (seat.group.value if seat.group else None)
            )
            found = list(await session.scalars(select(User).where(where).order_by(User.id)))
        people = [u for u in found if u is not None and u.active]
        present = [(u, u.id) for u in people if not u.on_leave]
        if present:
            return present
        stand_ins = []
        for absent in people:
            delegate = await session.get(User, absent.delegate_id) if absent.delegate_id else None
            if delegate is not None and delegate.active and not delegate.on_leave:
                stand_ins.append((delegate, absent.id))
        return stand_ins or [(u, u.id) for u in people]

    async def _fallback(self, session: AsyncSession, owner_id: int | None) -> list[User]:
        """A seat nobody can fill goes to the owner's manager, else the admins: never stuck."""
        manager_id = await _manager_id(session, owner_id)
        manager = await session.get(User, manager_id) if manager_id else None
        if manager is not None and manager.active:
            return [manager]
        admins = await session.scalars(
            select(User).where(User.role == Role.admin.value, User.active).order_by(User.id)
        )
        return list(admins.all())[:1]

    async def _ask(
        self,
        session: AsyncSession,
        *,
        row: Contract | Quote,
        subject: Subject,
        round_no: int,
        step: int,
        step_name: str,
        seat: int,
        person: User,
        approver_id: int,
        due_at: datetime | None,
        escalated: bool = False,
    ) -> Asked:
        approval = Approval(
            subject=subject.value,
            subject_id=row.id,
            round=round_no,
            step=step,
            step_name=step_name,
            seat=seat,
            assignee_id=person.id,
            approver_id=approver_id,
            escalated_at=datetime.now(tz=ZoneInfo("UTC")) if escalated else None,
        )
        session.add(approval)
        await session.flush()
        wid = activity.info().workflow_id
        notice = Notice(
            key=f"{wid}/{approval.id}",
            template="approval.requested",
            recipient_id=person.id,
            params={"title": self._title(row), "subject": subject.value, "subject_id": row.id},
        )
        title = self.templates.mail(notice, person.locale, person.display_name).subject
        todo = await task.open_task(
            session,
            new=task.NewTask(
                key=f"{wid}/approval/{approval.id}",
                kind="approval",
                title=title[:300],
                assignee_id=person.id,
                customer_id=row.customer_id,
                ref_entity=subject.value,
                ref_id=row.id,
                workflow_id=wid,
                due_at=due_at,
                detail={"approval_id": approval.id, "step": step_name, "round": round_no},
            ),
        )
        approval.task_id = todo.id
        return self._asked(approval)

    async def _existing(
        self, session: AsyncSession, subject: Subject, subject_id: int, round_no: int, step: int
    ) -> list[Approval]:
        rows = await session.scalars(
            select(Approval)
            .where(
                Approval.subject == subject.value,
                Approval.subject_id == subject_id,
                Approval.round == round_no,
                Approval.step == step,
            )
            .order_by(Approval.id)
        )
        return list(rows.all())

    @staticmethod
    def _asked(row: Approval) -> Asked:
        """The row as the workflow tracks it."""
        assert row.assignee_id is not None and row.task_id is not None
        return Asked(
            approval_id=row.id, seat=row.seat, assignee_id=row.assignee_id, task_id=row.task_id
        )

    @activity.defn(name="approval_open_step")
    async def open_step(self, request: OpenStep) -> StepOpened:
        """One approval row and inbox task per person asked, for every seat of the step."""
        async with unit(self.sessions) as session:
            existing = await self._existing(
                session, request.subject, request.subject_id, request.round, request.step
            )
            if existing:
                # A retry after the commit: the same rows; links are signed afresh.
                pending = [r for r in existing if r.status == ApprovalStatus.pending.value]
                return StepOpened(asked=[self._asked(r) for r in pending])
            row = await self._subject(session, request.subject, request.subject_id)
            owner_id = await self._owner_of(session, row)
            asked: list[Asked] = []
            for seat, assignee in enumerate(request.chain_step.seats):
                people = await self._candidates(session, assignee, owner_id) or [
                    (u, u.id) for u in await self._fallback(session, owner_id)
                ]
                if not people:
                    raise ApplicationError(
                        f"nobody can answer seat {seat} of step {request.chain_step.name}",
                        type="NoApprover",
                        non_retryable=True,
                    )
                for person, approver_id in people:
                    asked.append(
                        await self._ask(
                            session,
                            row=row,
                            subject=request.subject,
                            round_no=request.round,
                            step=request.step,
                            step_name=request.chain_step.name,
                            seat=seat,
                            person=person,
                            approver_id=approver_id,
                            due_at=request.escalate_at,
                        )
                    )
            return StepOpened(asked=asked)

    @activity.defn(name="approval_escalate")
    async def escalate(self, request: Escalate) -> StepOpened:
        """Offer the waiting seats to each approver's manager (or delegate) as well."""
        async with unit(self.sessions) as session:
            rows = await self._existing(
                session, request.subject, request.subject_id, request.round, request.step
            )
            if any(r.escalated_at is not None for r in rows):
                return StepOpened(asked=[])  # a retry after the commit: already escalated
            row = await self._subject(session, request.subject, request.subject_id)
            asked: list[Asked] = []
            already = {(r.seat, r.assignee_id) for r in rows}
            for seat in request.seats:
                waiting = [r for r in rows if r.seat == seat and r.status == "pending"]
                for pending in waiting:
                    target = await self._escalation_target(session, pending, request.escalate_to)
                    if target is None or (seat, target.id) in already:
                        continue
                    already.add((seat, target.id))
                    asked.append(
                        await self._ask(
                            session,
                            row=row,
                            subject=request.subject,
                            round_no=request.round,
                            step=request.step,
                            step_name=request.step_name,
                            seat=seat,
                            person=target,
                            approver_id=pending.approver_id or target.id,
                            due_at=None,
                            escalated=True,
                        )
                    )
            return StepOpened(asked=asked)

    async def _escalation_target(
        self, session: AsyncSession, pending: Approval, to: EscalateTo
    ) -> User | None:
        person = await session.get(User, pending.assignee_id) if pending.assignee_id else None
        if person is None:
            return None
        if to is EscalateTo.delegate and person.delegate_id:
            delegate = await session.get(User, person.delegate_id)
            if delegate is not None and delegate.active:
                return delegate
        manager_id = await _manager_id(session, person.id)
        manager = await session.get(User, manager_id) if manager_id else None
        return manager if manager is not None and manager.active else None

    # --- answers --------------------------------------------------------------------------

    @activity.defn(name="approval_record")
    async def record(self, answer: Record) -> None:
        """The decision on its row and task; the rows it settles withdrawn; audit and timeline."""
        async with unit(self.sessions) as session:
            approval = await session.get(Approval, answer.approval_id, with_for_update=True)
            assert approval is not None
            if approval.status != ApprovalStatus.pending.value:
                return  # a retry after the commit
            now = datetime.now(tz=ZoneInfo("UTC"))
            approval.status = STATUS_OF[answer.decision].value
            approval.decided_by, approval.decided_at = answer.decided_by, now
            approval.comment, approval.via = answer.comment, answer.via
            await self._close_task(session, approval.task_id, answer, now)
            for other_id in answer.withdraw:
                other = await session.get(Approval, other_id)
                if other is not None and other.status == ApprovalStatus.pending.value:
                    other.status = ApprovalStatus.withdrawn.value
                    await self._close_task(session, other.task_id, None, now)
            row = await self._subject(session, answer.subject, answer.subject_id)
            actor = Actor(
                user_id=answer.decided_by,
                name=answer.decided_by_name,
                role=Role.approver,
                source=Source.page if answer.via == "link" else Source.api,
            )
            audit.record(
                session,
                actor=actor,
                action=answer.decision.value,
                entity=answer.subject.value,
                entity_id=answer.subject_id,
                note={
                    "approval_id": approval.id,
                    "step": approval.step_name,
                    "round": approval.round,
                    "comment": answer.comment,
                    "via": answer.via,
                },
            )
            timeline.add(
                session,
                customer_id=row.customer_id,
                kind=f"approval.{answer.decision.value}",
                actor=actor,
                summary=answer.comment or approval.step_name,
                ref=(answer.subject.value, answer.subject_id),
                detail={"step": approval.step_name, "round": approval.round},
            )

    @staticmethod
    async def _close_task(
        session: AsyncSession, task_id: int | None, answer: Record | None, now: datetime
    ) -> None:
        todo = await session.get(task.Task, task_id) if task_id else None
        if todo is None or todo.status != task.TaskStatus.open.value:
            return
        if answer is None:
            todo.status = task.TaskStatus.cancelled.value
        else:
            todo.status = task.TaskStatus.done.value
            todo.completed_by = answer.decided_by
            todo.outcome = {"decision": answer.decision.value, "comment": answer.comment}
        todo.completed_at = now

    # --- the end of a round ---------------------------------------------------------------

    @activity.defn(name="approval_conclude")
    async def conclude(self, request: Conclude) -> Concluded:
        async with unit(self.sessions) as session:
            row = await self._subject(session, request.subject, request.subject_id)
            if isinstance(row, Quote):
                await self._conclude_quote(session, row, request.outcome)
                return Concluded()
            return await self._conclude_contract(session, row, request.outcome)

    @staticmethod
    async def _conclude_quote(session: AsyncSession, row: Quote, outcome: Outcome) -> None:
        if row.status != QuoteStatus.pending_approval.value:
            return  # a retry after the commit
        if outcome is Outcome.changes_requested:
            row.status = QuoteStatus.draft.value
            audit.record(
                session,
                actor=WORKFLOW,
                action="changes_requested",
                entity="quote",
                entity_id=row.id,
                before={"status": QuoteStatus.pending_approval.value},
                after={"status": row.status},
            )
            return
        await quotes.conclude_approval(
            session, quote_id=row.id, approved=outcome is Outcome.approved
        )

    async def _conclude_contract(
        self, session: AsyncSession, row: Contract, outcome: Outcome
    ) -> Concluded:
        status = {
            Outcome.approved: ContractStatus.signed,
            Outcome.rejected: ContractStatus.rejected,
            Outcome.changes_requested: ContractStatus.changes_requested,
        }[outcome]
        if row.status == ContractStatus.in_approval.value:
            before = {"status": row.status}
            row.status = status.value
            if status is ContractStatus.signed:
                row.signed_at = datetime.now(tz=ZoneInfo("UTC"))
            audit.record(
                session,
                actor=WORKFLOW,
                action=outcome.value,
                entity="contract",
                entity_id=row.id,
                before=before,
                after={"status": row.status},
            )
            timeline.add(
                session,
                customer_id=row.customer_id,
                kind=f"contract.{status.value}",
                actor=WORKFLOW,
                summary=self._title(row),
                ref=("contract", row.id),
            )
        if status is not ContractStatus.signed:
            return Concluded(deal_id=row.deal_id)
        return Concluded(deal_id=row.deal_id, renewal_at=await self._renewal_at(session, row))

    async def _renewal_at(self, session: AsyncSession, row: Contract) -> datetime | None:
        """09:00 local, the policy's lead time before the contract ends."""
        if row.end_on is None:
            return None
        _v, rules = await policy.current(session, kind=PolicyKind.contract)
        assert isinstance(rules, ContractPolicy)
        day: date = row.end_on - timedelta(days=rules.renewal_notice_days)
        return datetime.combine(day, time(9), ZoneInfo(self.settings.timezone))

    @activity.defn(name="approval_renew")
    async def renew(self, contract_id: int) -> int:
        """The renewal deal and the owner's renewal task; returns the deal's id."""
        async with unit(self.sessions) as session:
            row = await session.get(Contract, contract_id, with_for_update=True)
            assert row is not None
            if row.renewal_deal_id is not None:
                return row.renewal_deal_id
            deal = Deal(
                name=f"{row.title} · 续约",
                kind=DealKind.renewal.value,
                customer_id=row.customer_id,
                owner_id=row.owner_id,
                amount=row.amount,
                currency=row.currency,
                renewal_of_contract_id=row.id,
                expected_close_on=row.end_on,
            )
            session.add(deal)
            await session.flush()
            row.renewal_deal_id = deal.id
            await task.open_task(
                session,
                new=task.NewTask(
                    key=f"{activity.info().workflow_id}/renewal",
                    kind="contract.renewal",
                    title=f"续约：{row.number} {row.title}（{row.end_on} 到期）",
                    assignee_id=row.owner_id,
                    customer_id=row.customer_id,
                    ref_entity="deal",
                    ref_id=deal.id,
                    due_at=datetime.combine(row.end_on, time(9), ZoneInfo(self.settings.timezone))
                    if row.end_on
                    else None,
                ),
            )
            audit.record(
                session,
                actor=WORKFLOW,
                action="create",
                entity="deal",
                entity_id=deal.id,
                after={"name": deal.name, "kind": deal.kind, "renews": row.id},
            )
            timeline.add(
                session,
                customer_id=row.customer_id,
                kind="contract.renewal_due",
                actor=WORKFLOW,
                summary=self._title(row),
                ref=("deal", deal.id),
            )
            return deal.id
