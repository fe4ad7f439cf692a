"""The customer and lead list pages link to their export, with the filters on screen, and the
link works with the page's own sign-in cookie."""

from __future__ import annotations

import csv
import html
import io
import re

import httpx

from domain.access import Role
from tests.conftest import MakeUser
from tests.pages.conftest import web_sign_in

EXPORT_LINK = re.compile(r'href="(/api/(?:customers|leads)/export\?[^"]+)"')


async def test_list_pages_link_to_their_export_with_the_filters_shown(
    web: httpx.AsyncClient, make_user: MakeUser,
) -> None:
    await make_user("root", Role.admin)
    await web_sign_in(web, "root")
    api_headers = {"X-Requested-With": "test"}
    for name, city in (("杭州青禾食品有限公司", "杭州"), ("宁波海岳贸易有限公司", "宁波")):
        made = await web.post("/api/customers", json={"kind": "company", "name": name,
                                                      "city": city}, headers=api_headers)
        assert made.status_code == 201, made.text

    page = await web.get("/customers", params={"city": "杭州"})
    assert page.status_code == 200
    links = [html.unescape(link) for link in EXPORT_LINK.findall(page.text)]
    assert [link.split("&")[0] for link in links] == [
        "/api/customers/export?format=xlsx", "/api/customers/export?format=csv"]
    assert "导出 Excel" in page.text and "导出 CSV" in page.text

    exported = await web.get(links[1])
    assert exported.status_code == 200, exported.text
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert [r[1] for r in rows] == ["客户名称", "杭州青禾食品有限公司"]

    leads = await web.get("/leads", params={"status": "pooled"})
    assert leads.status_code == 200
    assert [html.unescape(link) for link in EXPORT_LINK.findall(leads.text)] == [
        "/api/leads/export?format=xlsx&status=pooled", "/api/leads/export?format=csv&status=pooled"]
