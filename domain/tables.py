"""Imports every table so Base.metadata is complete (for Alembic and test fixtures)."""

from domain import api_key, audit, custom_field, follow_up, task, timeline, user
from domain.customer import models as customer_models
from domain.db import Base

metadata = Base.metadata

__all__ = [
    "api_key",
    "audit",
    "custom_field",
    "customer_models",
    "follow_up",
    "metadata",
    "task",
    "timeline",
    "user",
]
