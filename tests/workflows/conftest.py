"""Workflow timing tests run on a time-skipping server of their own (see `temporal_env`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.conftest import client_for_test


@pytest.fixture
async def temporal_client(temporal_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    async for client in client_for_test(temporal_env):
        yield client
