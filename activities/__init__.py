"""Every activity the worker runs, bound to the database it writes to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.approval import ApprovalActivities
from activities.deal import DealActivities
from activities.erp import ErpActivities
from activities.follow_up import FollowUpActivities
from activities.imports import ImportActivities
from activities.lead import LeadActivities
from activities.notify import NotifyActivities
from activities.order import OrderActivities
from activities.ticket import TicketActivities
from domain.settings import Settings


def all_activities(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> list[Callable[..., Any]]:
    """ALL_ACTIVITIES needs a database and settings, so it is built per worker, not at import."""
    follow_ups = FollowUpActivities(sessions)
    leads = LeadActivities(sessions, settings)
    notices = NotifyActivities(sessions, settings)
    orders = OrderActivities(sessions, settings)
    erp = ErpActivities(sessions, settings)
    approvals = ApprovalActivities(sessions, settings)
    deals = DealActivities(sessions, settings)
    imports = ImportActivities(sessions, settings)
    tickets = TicketActivities(sessions, settings)
    return [
        follow_ups.remind_next_contact,
        leads.load_plan,
        leads.assign,
        leads.mark_sla,
        leads.transition,
        notices.notify,
        orders.open,
        orders.load_plan,
        orders.book,
        orders.request_invoice,
        orders.apply_event,
        orders.mark_overdue,
        erp.push_customer,
        approvals.plan,
        approvals.open_step,
        approvals.escalate,
        approvals.record,
        approvals.conclude,
        approvals.renew,
        deals.plan,
        deals.people,
        deals.move,
        imports.check,
        imports.write,
        imports.start_leads,
        imports.finish,
        tickets.load_plan,
        tickets.dispatch,
        tickets.mark_sla,
        tickets.transition,
        tickets.mail_reply,
        tickets.send_survey,
        tickets.remind_survey,
    ]
