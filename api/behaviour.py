"""Behaviour events from websites, mail and event tools: they score leads and raise alerts."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import CurrentActor, SessionDep
from domain import behaviour
from domain.access import Scope

router = APIRouter(tags=["behaviour"])


@router.post("/api/events", status_code=201)
async def record_event(
    data: behaviour.BehaviourIn, actor: CurrentActor, session: SessionDep
) -> behaviour.BehaviourRecorded:
    """Store one event (page view, form view, mail open/click, attendance, form submit).

    Keyed by lead_id, customer_id, phone, email or visitor_id; says what it matched, the lead's
    new score and any upsell alert task (one per burst, however often the event is repeated).
    Signed-in users, or API keys with the events:write scope.
    """
    actor.require_scope(Scope.events_write)
    return await behaviour.record(session, actor=actor, data=data)
