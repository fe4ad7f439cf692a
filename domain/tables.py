"""Imports every table so Base.metadata is complete (for Alembic and test fixtures)."""

from domain import (
    api_key,
    approval,
    audit,
    behaviour,
    custom_field,
    follow_up,
    lead_form,
    notification,
    policy,
    product,
    purchase,
    task,
    timeline,
    user,
)
from domain.contract import models as contract_models
from domain.customer import models as customer_models
from domain.db import Base
from domain.deal import models as deal_models
from domain.imports import models as imports_models
from domain.lead import models as lead_models
from domain.merge import models as merge_models
from domain.order import models as order_models
from domain.quote import models as quote_models
from domain.ticket import models as ticket_models

metadata = Base.metadata

__all__ = [
    "api_key",
    "approval",
    "audit",
    "behaviour",
    "contract_models",
    "custom_field",
    "customer_models",
    "deal_models",
    "follow_up",
    "imports_models",
    "lead_form",
    "lead_models",
    "merge_models",
    "metadata",
    "notification",
    "order_models",
    "policy",
    "product",
    "purchase",
    "quote_models",
    "task",
    "ticket_models",
    "timeline",
    "user",
]
