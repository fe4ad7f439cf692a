"""Workflow ids of other lifecycles, as seen from inside a workflow (no settings there)."""

from __future__ import annotations

from temporalio import workflow


def sibling_id(own: str, concept: str, entity_id: int) -> str:
    """`<prefix>order-7` beside this workflow's `<prefix>contract-3`, where `own` names this
    workflow's entity ("contract-3"): the install's id prefix (settings) carries over."""
    mine = workflow.info().workflow_id
    return f"{mine[: len(mine) - len(own)]}{concept}-{entity_id}"
