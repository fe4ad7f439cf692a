"""Side effects of the deal lifecycle: pin the pipeline, find who to alert, write stage moves.

A move is checked (rights, exit criteria) and written in one transaction, keyed by the
activity so a retry after the commit finds its own stage change and reports it.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.unit import unit
from domain import policy, task, user
from domain.access import ApproverGroup, Source
from domain.calendar import ALWAYS_OPEN, BusinessCalendar
from domain.contract import service as contracts
from domain.deal import service as deals
from domain.deal.lifecycle import DealPlan, DealStart, Moved, MoveRequest, People
from domain.deal.models import Deal, DealStageChange
from domain.deal.rules import PipelinePolicy, Stage
from domain.errors import Conflict, Forbidden
from domain.policy import PolicyKind
from domain.settings import Settings
from domain.user import Team, User


class DealActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings

    async def _deal(self, session: AsyncSession, deal_id: int) -> Deal:
        row = await session.get(Deal, deal_id, with_for_update=True)
        if row is None:
            # The API starts the workflow just before it commits: wait for the row (retryable).
            raise ApplicationError(f"deal {deal_id} is not visible yet")
        return row

    @activity.defn(name="deal_plan")
    async def plan(self, start: DealStart) -> DealPlan:
        async with unit(self.sessions) as session:
            row = await self._deal(session, start.deal_id)
            if row.pipeline_version:
                rules = await policy.at_version(
                    session,
                    kind=PolicyKind.pipeline,
                    name=row.pipeline,
                    version=row.pipeline_version,
                )
            else:
                row.pipeline_version, rules = await deals.pipeline(session, row.pipeline)
            assert isinstance(rules, PipelinePolicy)
            return DealPlan(
                deal_id=row.id,
                name=row.name,
                pipeline=row.pipeline,
                version=row.pipeline_version,
                policy=rules,
                stage=row.stage if rules.stage(row.stage) else rules.first.key,
                status=row.status,
                stage_entered_at=row.stage_entered_at,
            )

    @activity.defn(name="deal_people")
    async def people(self, deal_id: int) -> People:
        async with unit(self.sessions) as session:
            row = await self._deal(session, deal_id)
            _v, rules = await deals.pipeline(session, row.pipeline)
            owner = await session.get(User, row.owner_id) if row.owner_id else None
            team = await session.get(Team, owner.team_id) if owner and owner.team_id else None
            manager = await user.manager_of(session, user_id=owner.id) if owner else None
            calendar = ALWAYS_OPEN
            if rules.business_hours:
                _v, calendar = await policy.current(
                    session, kind=PolicyKind.calendar, name=team.calendar if team else "default"
                )
                assert isinstance(calendar, BusinessCalendar)
            return People(
                owner_id=row.owner_id,
                manager_id=manager.id if manager else None,
                team_id=team.id if team else None,
                calendar=calendar,
            )

    @activity.defn(name="deal_move")
    async def move(self, request: MoveRequest) -> Moved:
        key = f"{activity.info().workflow_id}/{activity.info().activity_id}"
        async with unit(self.sessions) as session:
            row = await self._deal(session, request.deal_id)
            done = await session.scalar(select(DealStageChange).where(DealStageChange.key == key))
            rules = await policy.at_version(
                session, kind=PolicyKind.pipeline, name=request.pipeline, version=request.version
            )
            assert isinstance(rules, PipelinePolicy)
            stage = rules.stage(request.stage)
            assert stage is not None  # the workflow's validator checked it
            if done is None:
                await self._check(session, row, rules, stage, request)
                deals.enter(
                    session,
                    deal=row,
                    stage=stage,
                    actor=request.caller.as_actor(),
                    at=request.at,
                    key=key,
                    lost_reason=request.lost_reason,
                    note=request.note,
                )
                self._entry_tasks(session, row, stage, key)
            moved = Moved(
                deal_id=row.id,
                stage=row.stage,
                status=row.status,
                stage_entered_at=row.stage_entered_at,
            )
            if stage.drafts_contract:
                await self._draft(session, row, request, moved)
            return moved

    async def _check(
        self,
        session: AsyncSession,
        row: Deal,
        rules: PipelinePolicy,
        stage: Stage,
        request: MoveRequest,
    ) -> None:
        actor = request.caller.as_actor()
        if request.caller.source != Source.workflow.value and not await user.answers_for(
            session, actor=actor, owner_id=row.owner_id
        ):
            raise Forbidden("only the deal's owner or their manager may move it")
        if row.stage == stage.key:
            raise Conflict(f"the deal is already in {row.stage}", field="stage")
        if request.caller.source == Source.workflow.value:
            return  # a signed contract wins the deal whatever is left unfilled
        gaps = await deals.missing(
            session, deal=row, criteria=rules.criteria_between(row.stage, stage.key)
        )
        if gaps:
            raise Conflict(f"before {stage.key}, fill in: {', '.join(gaps)}", field=gaps[0])

    @staticmethod
    def _entry_tasks(session: AsyncSession, row: Deal, stage: Stage, key: str) -> None:
        for index, title in enumerate(stage.entry_tasks):
            session.add(
                task.Task(
                    key=f"{key}/task{index}",
                    kind="deal.stage_task",
                    title=title,
                    assignee_id=row.owner_id,
                    customer_id=row.customer_id,
                    ref_entity="deal",
                    ref_id=row.id,
                    workflow_id=activity.info().workflow_id,
                    detail={"stage": stage.key},
                )
            )

    async def _draft(
        self, session: AsyncSession, row: Deal, request: MoveRequest, moved: Moved
    ) -> None:
        """The contract from the accepted quote, and who must hear of it (legal, finance)."""
        quote = await deals.accepted_quote(session, deal_id=row.id)
        today = datetime.now(tz=ZoneInfo(self.settings.timezone)).date()
        drafted, _created = await contracts.draft_for_deal(
            session, deal=row, quote=quote, actor=request.caller.as_actor(), today=today
        )
        moved.contract_id = drafted.id
        groups = (ApproverGroup.legal.value, ApproverGroup.finance.value)
        people = await session.scalars(
            select(User.id).where(User.approver_group.in_(groups), User.active).order_by(User.id)
        )
        moved.tell = list(people.all())
