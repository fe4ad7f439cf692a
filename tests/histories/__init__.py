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
    if os.environ.get("DOSSIER_RECORD_HISTORIES") == "1":
        history = await handle.fetch_history()
        (HERE / f"{name}.json").write_text(history.to_json())
