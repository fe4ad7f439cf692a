"""Garbage to every endpoint: always a 4xx (or a success), never a 500."""

from __future__ import annotations

import itertools
import re
from typing import Any

import httpx
from fastapi import FastAPI

WRONG_VALUES: list[Any] = [
    None, "", "x" * 5000, "\x00", -1, 0, 2**63, 1.5, True, [], {}, ["a"], {"a": 1},
    "2026-13-45", "+86 abc", "'; DROP TABLE customers; --", "😀" * 50,
]
PATH_VALUES = ["0", "-1", "abc", "99999999999999999999", "1.5", "%00"]
RAW_BODIES = [b"not json", b"[]", b"{", b'{"a":', b"null", b"\xff\xfe", b"{}" * 3]


def _body_properties(app: FastAPI, operation: dict) -> dict[str, Any]:
    schema = (operation.get("requestBody", {}).get("content", {})
              .get("application/json", {}).get("schema", {}))
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = app.openapi()["components"]["schemas"][name]
    return schema.get("properties", {})


async def test_no_input_makes_a_500(
    client: httpx.AsyncClient, app: FastAPI, admin: dict[str, str]
) -> None:
    created = await client.post("/api/customers", json={"kind": "company", "name": "靶子公司"},
                                headers=admin)
    target = str(created.json()["id"])
    sent = 0

    async def send(method: str, url: str, **kwargs: Any) -> None:
        nonlocal sent
        headers = {**admin, **kwargs.pop("headers", {})}
        response = await client.request(method, url, headers=headers, **kwargs)
        sent += 1
        assert response.status_code < 500, (method, url, kwargs, response.text[:300])

    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            method = method.upper()
            real = re.sub(r"\{[^}]+\}", target, path)
            for value in PATH_VALUES:
                await send(method, re.sub(r"\{[^}]+\}", value, path))
            for param in operation.get("parameters", []):
                if param["in"] == "query":
                    for value in ["", "x" * 300, "-5", "abc", "99999999999999999999", "\x00"]:
                        await send(method, real, params={param["name"]: value})
            if method in ("POST", "PATCH", "PUT"):
                for raw in RAW_BODIES:
                    await send(method, real, content=raw,
                               headers={"content-type": "application/json"})
                for name, value in itertools.product(_body_properties(app, operation),
                                                     WRONG_VALUES):
                    await send(method, real, json={name: value})
    assert sent > 500


async def test_oversized_body_is_413(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    huge = {"kind": "company", "name": "x", "notes": "x" * 200_000}
    response = await client.post("/api/customers", json=huge, headers=admin)
    assert response.status_code == 413
    assert response.json()["detail"][0]["type"] == "too_large"


async def test_streamed_oversized_body_is_413(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    async def chunks():
        for _ in range(200):
            yield b"x" * 1000

    response = await client.post("/api/customers", content=chunks(),
                                 headers={**admin, "content-type": "application/json"})
    assert response.status_code == 413
