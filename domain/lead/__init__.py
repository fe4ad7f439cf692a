"""Leads: unqualified enquiries, from capture through first contact to conversion."""

from domain.lead import service
from domain.lead.models import Lead, LeadClaim, LeadStatus, SlaAction
from domain.lead.schemas import IntakeResult, LeadCreate, LeadRead

__all__ = [
    "IntakeResult",
    "Lead",
    "LeadClaim",
    "LeadCreate",
    "LeadRead",
    "LeadStatus",
    "SlaAction",
    "service",
]
