"""Satisfaction surveys (满意度): a signed, expiring, single-use link per resolution, the answer
stored on the ticket, and a follow-up visit (回访) for the supervisor after a low score."""

from __future__ import annotations

from datetime import datetime

import jwt
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit, task
from domain.access import Actor
from domain.db import utcnow
from domain.errors import Conflict, Forbidden
from domain.ticket import service
from domain.ticket.models import Ticket, TicketSurvey
from domain.ticket.schemas import SurveyAnswer

LINK_PURPOSE = "ticket-survey"
FOLLOW_UP_VISIT = "ticket.follow_up_visit"


def link_token(key: str, *, survey_id: int, expires_at: datetime) -> str:
    claims = {"purpose": LINK_PURPOSE, "survey_id": survey_id, "exp": int(expires_at.timestamp())}
    return jwt.encode(claims, key, algorithm="HS256")


def read_link(key: str, token: str) -> int:
    """The survey id a link is for; Forbidden naming the token when forged or expired."""
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise Forbidden("this survey link has expired", field="token") from None
    except jwt.PyJWTError:
        raise Forbidden("this survey link is not valid", field="token") from None
    survey_id = claims.get("survey_id")
    if claims.get("purpose") != LINK_PURPOSE or not isinstance(survey_id, int):
        raise Forbidden("this survey link is not valid", field="token")
    return survey_id


async def open_survey(session: AsyncSession, *, survey_id: int) -> tuple[TicketSurvey, Ticket]:
    """The survey and its ticket, for the page; Conflict once it has been answered."""
    survey = await session.get(TicketSurvey, survey_id)
    ticket = await session.get(Ticket, survey.ticket_id) if survey else None
    if survey is None or ticket is None:
        raise Forbidden("this survey link is not valid", field="token")
    if survey.answered_at is not None:
        raise Conflict("this survey has already been answered, thank you", field="token")
    return survey, ticket


async def answer(
    session: AsyncSession, *, actor: Actor, survey_id: int, data: SurveyAnswer, low_score: int
) -> Ticket:
    """Record the score once (a conditional UPDATE: two clicks at once cannot both count)."""
    survey, ticket = await open_survey(session, survey_id=survey_id)
    now = utcnow()
    done = await session.execute(
        update(TicketSurvey)
        .where(TicketSurvey.id == survey.id, TicketSurvey.answered_at.is_(None))
        .values(answered_at=now, score=data.score, comment=data.comment)
    )
    if done.rowcount != 1:
        raise Conflict("this survey has already been answered, thank you", field="token")
    before = {"csat": ticket.csat}
    ticket.csat, ticket.csat_comment = data.score, data.comment
    audit.record(
        session,
        actor=actor,
        action="survey",
        entity="ticket",
        entity_id=ticket.id,
        before=before,
        after={"csat": data.score},
        note={"survey_id": survey.id},
    )
    service.on_timeline(
        session,
        ticket,
        actor,
        "ticket.survey",
        data.comment or "",
        detail={"score": data.score},
    )
    if data.score <= low_score:
        await task.open_task(
            session,
            new=task.NewTask(
                key=f"ticket-survey-{survey.id}/{FOLLOW_UP_VISIT}",
                kind=FOLLOW_UP_VISIT,
                title=f"回访：工单 #T-{ticket.id} 满意度 {data.score} 分 · {ticket.subject}"[:300],
                assignee_id=await service.supervisor_of(session, ticket),
                customer_id=ticket.customer_id,
                ref_entity="ticket",
                ref_id=ticket.id,
                detail={"score": data.score, "comment": data.comment, "survey_id": survey.id},
            ),
        )
    return ticket


async def latest(session: AsyncSession, *, ticket_id: int) -> TicketSurvey | None:
    return await session.scalar(
        select(TicketSurvey)
        .where(TicketSurvey.ticket_id == ticket_id)
        .order_by(TicketSurvey.id.desc())
        .limit(1)
    )
