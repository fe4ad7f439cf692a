"""Quotes: priced offers for a deal, in versions; a deep discount needs approval first."""

from domain.quote.models import Quote, QuoteLine, QuoteStatus

__all__ = ["Quote", "QuoteLine", "QuoteStatus"]
