"""Saved column mappings: saved under a name (directly or with a check), offered for the next
file of the entity, applied by name on upload, replaced, deleted — admins only, audited."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.audit import AuditLog
from tests.conftest import Login, MakeUser
from tests.imports import upload, xlsx

FILE = xlsx([["公司", "座机号", "备用"], ["杭州青禾食品有限公司", "0571-88886666", "x"]])


async def test_a_saved_mapping_is_applied_by_name_replaced_and_deleted(
    client: httpx.AsyncClient, admin: dict[str, str], sessions: async_sessionmaker[AsyncSession],
) -> None:
    saved = await client.put("/api/imports/mappings/customers", headers=admin, json={
        "name": "旧系统", "mapping": {"公司": "name", "座机号": "phone", "备用": ""}})
    assert saved.status_code == 200, saved.text
    listed = (await client.get("/api/imports/mappings/customers", headers=admin)).json()
    assert [(m["name"], m["mapping"]["座机号"]) for m in listed] == [("旧系统", "phone")]
    assert (await client.get("/api/imports/mappings/contacts", headers=admin)).json() == []

    suggested = (await upload(client, admin, FILE)).json()
    assert suggested["mapping"] == {"公司": "name"}  # 座机号 is no synonym of a field
    applied = await upload(client, admin, FILE, mapping_name="旧系统")
    assert applied.status_code == 201, applied.text
    assert applied.json()["mapping"] == {"公司": "name", "座机号": "phone", "备用": ""}
    missing = await upload(client, admin, FILE, mapping_name="没有这个")
    assert missing.status_code == 404 and missing.json()["detail"][0]["loc"] == ["mapping"]

    # Adjusted on a check and saved again under the same name: it replaces the old one.
    import_id = applied.json()["id"]
    checked = await client.post(f"/api/imports/{import_id}/check", headers=admin, json={
        "mapping": {"公司": "name", "座机号": "phone", "备用": "notes"},
        "save_mapping_as": "旧系统"})
    assert checked.status_code == 202, checked.text
    listed = (await client.get("/api/imports/mappings/customers", headers=admin)).json()
    assert [m["mapping"]["备用"] for m in listed] == ["notes"]

    deleted = await client.delete("/api/imports/mappings/customers/旧系统", headers=admin)
    assert deleted.status_code == 204
    assert (await client.get("/api/imports/mappings/customers", headers=admin)).json() == []
    again = await client.delete("/api/imports/mappings/customers/旧系统", headers=admin)
    assert again.status_code == 404
    async with sessions() as session:
        actions = (await session.scalars(select(AuditLog.action).where(
            AuditLog.entity == "import_mapping").order_by(AuditLog.id))).all()
    assert actions == ["save", "save", "delete"]


async def test_a_mapping_naming_no_field_or_sent_by_a_rep_is_refused(
    client: httpx.AsyncClient, admin: dict[str, str], make_user: MakeUser, login: Login,
) -> None:
    wrong = await client.put("/api/imports/mappings/purchases", headers=admin, json={
        "name": "erp", "mapping": {"金额": "amount", "客户": "owner"}})
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["loc"] == ["mapping", "客户"]
    empty = await client.put("/api/imports/mappings/purchases", headers=admin,
                             json={"name": "", "mapping": {}})
    assert empty.status_code == 422 and empty.json()["detail"][0]["loc"][-1] == "name"
    await make_user("rep1")
    rep = await login("rep1")
    assert (await client.get("/api/imports/mappings/customers", headers=rep)).status_code == 403
    put = await client.put("/api/imports/mappings/customers", headers=rep,
                           json={"name": "x", "mapping": {}})
    assert put.status_code == 403
