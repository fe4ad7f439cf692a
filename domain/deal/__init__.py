"""Deals: opportunities moving through a pipeline from first contact to won or lost."""

from domain.deal.models import Deal, DealKind, DealStageChange, DealStatus

__all__ = ["Deal", "DealKind", "DealStageChange", "DealStatus"]
