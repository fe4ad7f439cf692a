"""The ticket lifecycle on the time-skipping server: SLA promises at exact instants, the pause
while waiting on the customer, reopen, and the survey reminder and auto-close."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.access import SYSTEM
from domain.audit import AuditLog
from domain.calendar import BusinessCalendar
from domain.db import transaction
from domain.policy import PolicyKind
from domain.settings import Settings
from domain.task import Task
from domain.ticket import Ticket, TicketStatus, service, sla
from domain.ticket.lifecycle import Ownership, TicketCarry, TicketPlan, TicketStart
from domain.ticket.rules import SlaTarget, SlaTerms
from domain.ticket.schemas import CustomerReplied
from tests.histories import record_history
from tests.leads import dates, day_of, fired_timers, next_weekday, publish, travel_to
from tests.sinks import SmtpSink
from tests.tickets import ServiceTeam, open_ticket, ticket_settled
from tests.workflows.test_lead import LATENCY, assert_instants
from workflows.ticket import TicketWorkflow

ROUND_THE_CLOCK = {"first_response": "PT1H", "next_response": "PT2H", "resolution": "PT4H",
                   "business_hours": False}


@pytest.fixture
def settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    """Mail to requesters goes through a real SMTP sink."""
    return settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp_sink.port})


def handle(env: WorkflowEnvironment, settings: Settings, ticket_id: int) -> WorkflowHandle:
    return env.client.get_workflow_handle(settings.workflow_id("ticket", ticket_id))


async def _terms(sessions: async_sessionmaker[AsyncSession], **terms: object) -> None:
    by_priority = {p: {**ROUND_THE_CLOCK, **terms} for p in ("P1", "P2", "P3", "P4")}
    await publish(sessions, PolicyKind.ticket_sla, {"by_priority": by_priority})


async def _tasks(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, int]]:
    async with sessions() as session:
        rows = await session.execute(select(Task.kind, Task.assignee_id).order_by(Task.id))
        return [tuple(r) for r in rows.all()]


def _started(row: Ticket, target: str) -> datetime:
    return datetime.fromisoformat(row.sla["promises"][target]["started_at"])


async def test_p1_round_the_clock_breaches_first_response_at_exactly_fifteen_minutes(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, service_team: ServiceTeam,
    admin: dict[str, str],
) -> None:
    sunday = await next_weekday(temporal_env, 6, time(3, 0))  # night and weekend: 24×7 counts
    await travel_to(temporal_env, sunday)
    ticket = await open_ticket(client, admin, priority="P1", subject="产线停机")
    first = await ticket_settled(sessions, ticket["id"], lambda r: r.sla_due_at is not None)
    assert first.assignee_id == service_team.ids["agent1"] and first.status == "assigned"
    opened = _started(first, "first_response")
    assert first.first_response_due_at == opened + timedelta(minutes=15)

    await temporal_env.sleep(timedelta(minutes=20))
    row = await ticket_settled(sessions, ticket["id"], lambda r: r.sla_breached)

    assert_instants(await fired_timers(handle(temporal_env, settings, ticket["id"])), [
        day_of(sunday, 0, 3, 11) + timedelta(seconds=15),  # 75 % of 15 min: the agent is warned
        day_of(sunday, 0, 3, 15),                          # breach: the supervisor is told
    ])
    assert row.sla_warnings == ["first_response.1"]
    assert row.sla_breaches == ["first_response.1"]
    agent1, lead = service_team.ids["agent1"], service_team.ids["lead"]
    assert await _tasks(sessions) == [
        ("ticket.assigned", agent1), ("ticket.sla_warning", agent1), ("ticket.sla_breached", lead),
    ]


async def test_waiting_on_the_customer_pauses_the_clock_for_exactly_the_paused_time(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, service_team: ServiceTeam,
    admin: dict[str, str],
) -> None:
    await _terms(sessions)
    tuesday = await next_weekday(temporal_env, 1, time(10, 0))
    await travel_to(temporal_env, tuesday)
    ticket = await open_ticket(client, admin, requester_email="wang@example.cn")
    await ticket_settled(sessions, ticket["id"], lambda r: r.sla_due_at is not None)
    agent = service_team.headers["agent1"]

    await temporal_env.sleep(timedelta(minutes=10))
    asked = await client.post(f"/api/tickets/{ticket['id']}/comments", headers=agent, json={
        "body": "请提供打印机型号", "wait_for_customer": True})
    assert asked.status_code == 201, asked.text
    assert asked.json()["status"] == "waiting_on_customer" and asked.json()["sla_paused"]
    assert asked.json()["resolution_due_at"] is None

    await temporal_env.sleep(timedelta(hours=6))  # longer than the whole promise: no breach
    async with transaction(sessions) as session:
        row = await session.get(Ticket, ticket["id"])
        reply, _new = await service.add_customer_comment(
            session, actor=SYSTEM, ticket=row, body="型号 HP-1020", author="王女士")
    await handle(temporal_env, settings, ticket["id"]).signal(
        TicketWorkflow.customer_replied, CustomerReplied(comment_id=reply.id))
    row = await ticket_settled(sessions, ticket["id"],
                               lambda r: r.status == "in_progress" and not r.sla_paused)

    paused = timedelta(seconds=row.sla_paused_seconds)
    assert timedelta(hours=6) <= paused < timedelta(hours=6) + LATENCY
    opened = _started(row, "resolution")
    assert row.resolution_due_at == opened + timedelta(hours=4) + paused  # moved by exactly that
    assert row.next_response_due_at is not None and not row.sla_paused
    assert row.sla_breaches == [] and row.first_response_seconds is not None
    await temporal_env.sleep(timedelta(hours=5))
    row = await ticket_settled(sessions, ticket["id"], lambda r: "resolution.1" in r.sla_breaches)
    timers = await fired_timers(handle(temporal_env, settings, ticket["id"]))
    due = opened + timedelta(hours=4) + paused
    assert any(due <= fired < due + LATENCY for fired in timers), (due, timers)
    assert row.priority == "P2"  # the resolution breach raised it


async def test_business_hours_resolution_runs_across_a_holiday(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, service_team: ServiceTeam,
    admin: dict[str, str],
) -> None:
    friday = await next_weekday(temporal_env, 4, time(17, 0))
    monday = friday.date() + timedelta(days=3)
    await publish(sessions, PolicyKind.calendar, {
        "working_hours": [["09:00", "18:00"]], "use_cn_holidays": False,
        "extra_holidays": dates(monday),
    })
    await _terms(sessions, first_response="PT30M", resolution="PT9H", business_hours=True)
    await travel_to(temporal_env, friday)
    ticket = await open_ticket(client, admin)
    await ticket_settled(sessions, ticket["id"], lambda r: r.sla_due_at is not None)

    await temporal_env.sleep(timedelta(days=5))
    row = await ticket_settled(sessions, ticket["id"], lambda r: "resolution.1" in r.sla_breaches)
    assert_instants(await fired_timers(handle(temporal_env, settings, ticket["id"])), [
        day_of(friday, 0, 17, 22) + timedelta(seconds=30),  # first response: warned at 75 %
        day_of(friday, 0, 17, 30),                          # and breached after 30 minutes
        day_of(friday, 4, 14, 45),  # resolution: 1 h Friday, Monday off, 5¾ h Tuesday (75 %)
        day_of(friday, 4, 17, 0),   # 9 working hours: 1 on Friday, 8 on Tuesday
    ])
    assert row.sla_breaches == ["first_response.1", "resolution.1"]


async def test_reopen_restarts_resolution_then_survey_reminder_and_auto_close(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, service_team: ServiceTeam,
    admin: dict[str, str], smtp_sink: SmtpSink,
) -> None:
    await _terms(sessions)
    tuesday = await next_weekday(temporal_env, 1, time(10, 0))
    await travel_to(temporal_env, tuesday)
    ticket = await open_ticket(client, admin, requester_email="wang@example.cn",
                               requester_name="王女士")
    tid = ticket["id"]
    await ticket_settled(sessions, tid, lambda r: r.sla_due_at is not None)
    agent = service_team.headers["agent1"]
    await temporal_env.sleep(timedelta(minutes=10))
    replied = await client.post(f"/api/tickets/{tid}/comments", headers=agent,
                                json={"body": "已远程处理"})
    assert replied.status_code == 201 and replied.json()["public_replies"] == 1
    resolved = await client.post(f"/api/tickets/{tid}/resolve", headers=agent,
                                 json={"note": "重新安装驱动"})
    assert resolved.json()["status"] == "resolved"
    assert resolved.json()["first_contact_resolution"] is True
    await temporal_env.sleep(timedelta(hours=1))
    reopened = await client.post(f"/api/tickets/{tid}/reopen", headers=agent,
                                 json={"reason": "又卡纸了"})
    assert reopened.status_code == 200, reopened.text
    row = await ticket_settled(sessions, tid, lambda r: r.status == "in_progress")
    restarted = _started(row, "resolution")
    assert restarted >= tuesday + timedelta(hours=1, minutes=10)
    assert row.resolution_due_at == restarted + timedelta(hours=4)  # a whole new promise
    assert row.reopened == 1 and row.first_contact_resolution is False

    done = await temporal_env.get_current_time()  # the workflow's clock, not the wall clock
    again = await client.post(f"/api/tickets/{tid}/resolve", headers=agent, json={})
    assert again.status_code == 200, again.text
    await temporal_env.sleep(timedelta(days=8))
    row = await ticket_settled(sessions, tid, lambda r: r.status == "closed")

    timers = await fired_timers(handle(temporal_env, settings, tid))
    assert_instants(timers[-2:], [done + timedelta(days=3), done + timedelta(days=7)])
    await smtp_sink.wait_for(5)
    subjects = [m["Subject"] for m in smtp_sink.messages if "wang@example.cn" in m["To"]]
    assert subjects[0] == f"[#T-{tid}] 打印机卡纸"           # the public reply, tagged
    assert "请为我们的服务评分" in subjects[1]                  # survey of the first resolution
    assert "请为我们的服务评分" in subjects[2]                  # survey of the second
    assert subjects[3].startswith(f"[#T-{tid}] 提醒")           # one reminder, after 3 days
    assert len(subjects) == 4
    assert row.closed_at is not None and row.first_contact_resolution is False
    await record_history(handle(temporal_env, settings, tid), "ticket_reopen_survey_closed")


async def test_a_first_response_breach_reassigns_to_another_agent_at_exactly_the_deadline(
    temporal_env: WorkflowEnvironment, worker: Worker, client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession], settings: Settings, service_team: ServiceTeam,
    admin: dict[str, str],
) -> None:
    by_priority = {p: ROUND_THE_CLOCK for p in ("P1", "P2", "P3", "P4")}
    await publish(sessions, PolicyKind.ticket_sla, {
        "by_priority": by_priority, "on_breach": {"first_response": ["reassign"]}})
    tuesday = await next_weekday(temporal_env, 1, time(10, 0))
    await travel_to(temporal_env, tuesday)
    ticket = await open_ticket(client, admin)
    first = await ticket_settled(sessions, ticket["id"], lambda r: r.sla_due_at is not None)
    agent1, agent2 = service_team.ids["agent1"], service_team.ids["agent2"]
    assert first.assignee_id == agent1
    opened = _started(first, "first_response")

    await temporal_env.sleep(timedelta(minutes=70))
    row = await ticket_settled(sessions, ticket["id"], lambda r: r.assignee_id == agent2)

    assert_instants(await fired_timers(handle(temporal_env, settings, ticket["id"])), [
        opened + timedelta(minutes=45),  # 75 %: agent1 is warned
        opened + timedelta(hours=1),     # breach: the ticket goes to the next agent
    ])
    assert row.sla_breaches == ["first_response.1"] and row.priority == "P3"
    assert row.status == "assigned" and row.team_id == service_team.ids["team"]
    assert await _tasks(sessions) == [
        ("ticket.assigned", agent1), ("ticket.sla_warning", agent1), ("ticket.assigned", agent2),
    ]  # reassign only: no supervisor notice, as the policy says
    async with sessions() as session:
        reasons = (await session.scalars(select(AuditLog.changes).where(
            AuditLog.entity == "ticket", AuditLog.action == "dispatch").order_by(AuditLog.id)
        )).all()
    assert [c["_note"]["reason"] for c in reasons] == ["new", "sla"]


async def test_a_continued_run_goes_on_from_the_carried_state_without_repeating_itself(
    temporal_env: WorkflowEnvironment, worker: Worker, sessions: async_sessionmaker[AsyncSession],
    settings: Settings, smtp_sink: SmtpSink, task_queue: str,
) -> None:
    """What continue-as-new hands over: a resolved, already surveyed and reminded ticket only
    closes at the end of its reopen window, and nothing is dispatched or mailed again."""
    async with transaction(sessions) as session:
        row = Ticket(type="repair", subject="打印机卡纸", status="resolved",
                     requester_email="wang@example.cn")
        session.add(row)
        await session.flush()
        ticket_id = row.id
    now = await temporal_env.get_current_time()
    resolved_at = now - timedelta(days=5)
    carried = TicketCarry(
        status=TicketStatus.resolved,
        ownership=Ownership(assignee_id=None),
        plan=TicketPlan(
            terms=SlaTerms(first_response=timedelta(hours=1), resolution=timedelta(hours=4)),
            warn_at=0.75, on_breach={}, reopen_within_seconds=timedelta(days=7).total_seconds(),
            survey_reminder_after_seconds=timedelta(days=3).total_seconds(), complaint=False,
            customer_owner_id=None, subject="打印机卡纸", versions={}),
        calendar=BusinessCalendar(always_open=True),
        clock=sla.SlaClock(),
        starts={SlaTarget.first_response: 1, SlaTarget.resolution: 1},
        version=7, opened_at=resolved_at - timedelta(hours=2), resolved_at=resolved_at,
        rounds=1, surveyed=1, reminded=1,
    )
    run = await temporal_env.client.start_workflow(
        TicketWorkflow.run, TicketStart(ticket_id=ticket_id, carried=carried),
        id=settings.workflow_id("ticket", ticket_id), task_queue=task_queue)
    assert await run.result() == "closed"

    assert_instants(await fired_timers(run), [resolved_at + timedelta(days=7)])
    closed = await ticket_settled(sessions, ticket_id, lambda r: r.status == "closed")
    assert closed.assignee_id is None and closed.policy_versions == {}  # nothing re-run
    assert smtp_sink.messages == [] and await _tasks(sessions) == []
