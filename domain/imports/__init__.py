"""Imports: spreadsheets of customers, contacts, leads, follow-ups and past purchases checked,
deduplicated and written in resumable chunks. `import` is a keyword, so the concept is
`imports` in every folder."""

from domain.imports import service
from domain.imports.columns import Entity
from domain.imports.models import Import, ImportMapping, ImportProblem, ImportRow, Status, Strategy
from domain.imports.schemas import ImportOptions, ImportRead

__all__ = [
    "Entity",
    "Import",
    "ImportMapping",
    "ImportOptions",
    "ImportProblem",
    "ImportRead",
    "ImportRow",
    "Status",
    "Strategy",
    "service",
]
