"""Recorded workflow histories, replayed in the suite so a non-deterministic change fails CI.

`DOSSIER_RECORD_HISTORIES=1 make test` rewrites them from the current code; commit the result
only when a change is meant to be incompatible (and running workflows are handled with
`workflow.patched`).
"""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.client import WorkflowHandle

HERE = Path(__file__).parent


async def record_history(handle: WorkflowHandle, name: str) -> None:
    """Write the history, and beside it the workflow id: workflows that derive their children's
    ids from their own must replay under the id they ran with."""
    if os.environ.get("DOSSIER_RECORD_HISTORIES") == "1":
        history = await handle.fetch_history()
        (HERE / f"{name}.json").write_text(history.to_json())
        (HERE / f"{name}.id").write_text(handle.id + "\n")


def workflow_id(name: str) -> str:
    """The id a recorded history ran under (its name, for histories recorded without one)."""
    path = HERE / f"{name}.id"
    return path.read_text().strip() if path.exists() else name
