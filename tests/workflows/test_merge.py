"""A running order workflow told of a customer merge: its later notices name the survivor."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

from temporalio import activity
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.notification import Notice
from domain.order.lifecycle import CustomerMerged, InstalmentStep, OrderPlan, OrderStart
from tests.conftest import wait_until
from workflows.order import OrderWorkflow


async def test_customer_merged_moves_the_orders_notices_to_the_survivor(
    temporal_env: WorkflowEnvironment, temporal_client: Client
) -> None:
    now = await temporal_env.get_current_time()
    notices: list[Notice] = []

    @activity.defn(name="order_load_plan")
    async def load_plan(start: OrderStart) -> OrderPlan:
        return OrderPlan(
            order_id=start.order_id, number="SO-1", customer_id=7, customer_name="云杉科技(上海)",
            owner_id=3, manager_id=None, booked=True, invoice_requested=True, completed=False,
            policy_version=1,
            instalments=[InstalmentStep(
                seq=1, due_on=(now + timedelta(days=10)).date(), amount=Decimal("100"),
                remind_at=now + timedelta(days=1), overdue_at=now + timedelta(days=10),
            )],
        )

    @activity.defn(name="notify")
    async def notify(notice: Notice) -> None:
        notices.append(notice)

    queue = f"merge-{uuid.uuid4().hex[:8]}"
    async with Worker(temporal_client, task_queue=queue, workflows=[OrderWorkflow],
                      activities=[load_plan, notify]):
        handle = await temporal_client.start_workflow(
            OrderWorkflow.run, OrderStart(order_id=1), id=f"{queue}-order-1", task_queue=queue
        )
        await handle.signal(
            OrderWorkflow.customer_merged, CustomerMerged(customer_id=9, customer_name="云杉科技")
        )
        await temporal_env.sleep(timedelta(days=1, hours=1))

        async def reminded() -> bool:
            return bool(notices)

        await wait_until(reminded)
        await handle.terminate("test finished")
    [notice] = notices
    assert notice.template == "order.payment_due"
    assert notice.customer_id == 9
    assert notice.params["customer"] == "云杉科技"
    assert notice.params["path"] == "/customers/9"
