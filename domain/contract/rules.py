"""Contract policy as data: when a signed contract asks for its renewal."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ContractPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    renewal_notice_days: Annotated[int, Field(ge=1, le=365)] = 30
    """A renewal task and a renewal deal appear this many days before the contract ends."""
