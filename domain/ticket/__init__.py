"""Service tickets (工单): requests from the API, a support form, mail and the call centre,
dispatched to a team, held to SLA promises in business time, closed with the customer's verdict."""

from domain.ticket import service
from domain.ticket.models import (
    CallRecord,
    Priority,
    Ticket,
    TicketAttachment,
    TicketComment,
    TicketStatus,
    TicketSurvey,
)

__all__ = [
    "CallRecord",
    "Priority",
    "Ticket",
    "TicketAttachment",
    "TicketComment",
    "TicketStatus",
    "TicketSurvey",
    "service",
]
