"""Imports every table so Base.metadata is complete (for Alembic and test fixtures)."""

from domain import (
    api_key,
    audit,
    behaviour,
    custom_field,
    deal,
    follow_up,
    lead_form,
    notification,
    policy,
    task,
    timeline,
    user,
)
from domain.customer import models as customer_models
from domain.db import Base
from domain.lead import models as lead_models

metadata = Base.metadata

__all__ = [
    "api_key",
    "audit",
    "behaviour",
    "custom_field",
    "customer_models",
    "deal",
    "follow_up",
    "lead_form",
    "lead_models",
    "metadata",
    "notification",
    "policy",
    "task",
    "timeline",
    "user",
]
