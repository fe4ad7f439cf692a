"""Who is acting, with which role, and what that lets them see. Pure: no tables here."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from domain.errors import Forbidden


class Role(StrEnum):
    admin = "admin"
    sales_manager = "sales_manager"
    sales = "sales"
    service_manager = "service_manager"
    service = "service"
    approver = "approver"


class ApproverGroup(StrEnum):
    finance = "finance"
    legal = "legal"
    director = "director"


class Source(StrEnum):
    """Where a change came from, as the audit log records it."""

    page = "page"
    api = "api"
    api_key = "api_key"
    workflow = "workflow"
    system = "system"
    imports = "imports"
    form = "form"


class Scope(StrEnum):
    """What an API key may do; people are limited by their role instead."""

    customers_read = "customers:read"
    customers_write = "customers:write"
    leads_write = "leads:write"
    events_write = "events:write"
    calls_write = "calls:write"
    erp = "erp"


@dataclass(frozen=True)
class Actor:
    user_id: int | None
    name: str
    role: Role
    source: Source
    team_id: int | None = None
    managed_team_ids: frozenset[int] = frozenset()
    api_key_id: int | None = None
    scopes: frozenset[Scope] | None = None
    """None for people (their role decides); the granted scopes for an API key."""
    locale: str = "zh-CN"
    extra: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin and self.scopes is None

    def require_role(self, *roles: Role) -> None:
        if self.scopes is not None or (self.role not in roles and self.role is not Role.admin):
            raise Forbidden("your role may not do this")

    def require_scope(self, scope: Scope) -> None:
        """People pass (their role is checked elsewhere); API keys need the scope granted."""
        if self.scopes is not None and scope not in self.scopes:
            raise Forbidden(f"this API key lacks the scope {scope.value}")


SYSTEM = Actor(user_id=None, name="system", role=Role.admin, source=Source.system)
WORKFLOW = Actor(user_id=None, name="workflow", role=Role.admin, source=Source.workflow)
