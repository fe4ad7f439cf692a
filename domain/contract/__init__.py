"""Contracts: drafted from the accepted quote, approved by a chain of people, then signed."""

from domain.contract.models import Contract, ContractStatus

__all__ = ["Contract", "ContractStatus"]
