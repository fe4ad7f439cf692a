"""Every recorded history replays against today's workflow code without non-determinism."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.histories import HERE, workflow_id
from workflows import ALL_WORKFLOWS

HISTORIES = sorted(HERE.glob("*.json"))


def test_there_are_recorded_histories() -> None:
    assert HISTORIES, "record them: DOSSIER_RECORD_HISTORIES=1 make test"


@pytest.mark.parametrize(
    "history",
    [WorkflowHistory.from_json(workflow_id(p.stem), p.read_text()) for p in HISTORIES],
    ids=[p.stem for p in HISTORIES],
)
async def test_history_replays(history: WorkflowHistory) -> None:
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(history)
