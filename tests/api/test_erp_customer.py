"""Changes to a customer's billing details or contacts reach the ERP (the simulator, over HTTP)."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from domain.access import Role
from domain.db import transaction
from domain.erp import customer_code
from domain.order.rules import OrderPolicy
from domain.order.service import open_from_contract
from domain.settings import Settings
from tests.conftest import Login, MakeUser, wait_until
from tests.erp import ErpSim, signed_contract, with_erp


@pytest.fixture
def settings(settings: Settings, erp_sim: ErpSim) -> Settings:
    return with_erp(settings, erp_sim)


async def test_billing_and_contact_changes_are_pushed_to_the_erp(
    client: httpx.AsyncClient, worker: Worker, erp_sim: ErpSim,
    sessions: async_sessionmaker[AsyncSession], make_user: MakeUser, login: Login,
) -> None:
    rep = await make_user("rep1", Role.sales)
    headers = await login("rep1")
    contract = await signed_contract(sessions, owner_id=rep.id)
    async with transaction(sessions) as session:
        await open_from_contract(session, contract_id=contract.id, policy=OrderPolicy(),
                                 today=date.today(), signed_on=date.today())
    code = customer_code(contract.customer_id)

    changed = await client.patch(
        f"/api/customers/{contract.customer_id}",
        json={"invoice_title": "上海云杉信息科技（集团）有限公司",
              "bank_account": "6222 0000 1111"},
        headers=headers,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["invoice_title"] == "上海云杉信息科技（集团）有限公司"

    async def pushed(check: str) -> bool:
        return check in str(erp_sim.state.customers.get(code))

    await wait_until(lambda: pushed("6222 0000 1111"))
    stored = erp_sim.state.customers[code]
    assert stored["invoice_title"] == "上海云杉信息科技（集团）有限公司"
    assert stored["tax_id"] == "91350100M000100Y43"

    added = await client.post(f"/api/customers/{contract.customer_id}/contacts",
                              json={"name": "李娜", "title": "财务经理", "mobile": "13912345678"},
                              headers=headers)
    assert added.status_code == 201, added.text
    await wait_until(lambda: pushed("李娜"))
    assert erp_sim.state.customers[code]["contacts"] == [{
        "name": "李娜", "title": "财务经理", "mobile": "+8613912345678", "phone": None,
        "email": None,
    }]


async def test_a_customer_the_erp_does_not_know_is_not_pushed(
    client: httpx.AsyncClient, temporal_client: Client, erp_sim: ErpSim, settings: Settings,
    admin: dict[str, str],
) -> None:
    created = await client.post(
        "/api/customers", json={"kind": "company", "name": "杭州新客户有限公司"}, headers=admin
    )
    assert created.status_code == 201, created.text
    customer_id = created.json()["id"]

    changed = await client.patch(f"/api/customers/{customer_id}",
                                 json={"invoice_title": "杭州新客户有限公司"}, headers=admin)

    assert changed.status_code == 200, changed.text
    with pytest.raises(RPCError):
        await temporal_client.get_workflow_handle(
            settings.workflow_id("erp-customer", customer_id)
        ).describe()
    assert erp_sim.state.requests == {}
