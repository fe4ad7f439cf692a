"""Team chat robots: WeCom (企业微信), DingTalk (钉钉) and Feishu (飞书) custom-robot webhooks.

Each speaks its own message format and signature; `post_robot` hides that behind one call and
says whether a failure is worth retrying.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from enum import StrEnum
from typing import Any

import httpx

from domain.notification import Rejected


class RobotKind(StrEnum):
    wecom = "wecom"
    dingtalk = "dingtalk"
    feishu = "feishu"


RATE_LIMITED = {
    RobotKind.wecom: {45009},
    RobotKind.dingtalk: {130101, 410100},
    RobotKind.feishu: {11232},
}
"""Error codes in an answer's body that mean "too many messages, try later", not "never"."""

RETRYABLE_STATUS = {408, 425, 429}


class RobotBusy(Exception):
    """The robot asks us to slow down; the message should go out on a later attempt."""


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk: base64(HMAC-SHA256(key=secret, msg="timestamp\\nsecret"))."""
    digest = hmac.new(
        secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu: base64(HMAC-SHA256(key="timestamp\\nsecret", msg=b""))."""
    digest = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def robot_request(
    kind: RobotKind, url: str, secret: str | None, title: str, text: str
) -> tuple[httpx.URL, dict[str, Any]]:
    """The URL and JSON body one robot expects, signed when the robot has a secret.

    `text` is markdown for WeCom and DingTalk and plain text for Feishu; the title leads it.
    """
    target = httpx.URL(url)
    if kind is RobotKind.wecom:
        return target, {"msgtype": "markdown", "markdown": {"content": f"**{title}**\n\n{text}"}}
    if kind is RobotKind.dingtalk:
        body: dict[str, Any] = {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": f"#### {title}\n\n{text}"},
        }
        if secret:
            now_ms = int(time.time() * 1000)
            target = target.copy_merge_params(
                {"timestamp": str(now_ms), "sign": dingtalk_sign(secret, now_ms)}
            )
        return target, body
    body = {"msg_type": "text", "content": {"text": f"{title}\n{text}"}}
    if secret:
        now_s = int(time.time())
        body = {"timestamp": str(now_s), "sign": feishu_sign(secret, now_s), **body}
    return target, body


async def post_robot(
    kind: RobotKind | str,
    url: str,
    secret: str | None,
    title: str,
    text: str,
    *,
    http_timeout: float = 10,
) -> None:
    """Post one message to a team's robot.

    Raises `Rejected` when the robot refuses it for good (a 4xx, or an error code in a 200
    answer such as a bad signature or a disabled robot); network errors, timeouts, 5xx, 429
    and rate-limit codes propagate so the caller retries later.
    """
    try:
        robot = RobotKind(kind)
    except ValueError:
        raise Rejected(f"unknown chat robot kind {kind!r}") from None
    target, body = robot_request(robot, url, secret, title, text)
    async with httpx.AsyncClient(timeout=http_timeout) as client:
        response = await client.post(target, json=body)
    code, message = _error_code(response)
    if code in RATE_LIMITED[robot] or response.status_code in RETRYABLE_STATUS:
        raise RobotBusy(f"{robot} robot is rate limited: {response.status_code} {message}")
    if response.is_server_error:
        response.raise_for_status()
    if response.is_client_error or code:
        raise Rejected(f"{robot} robot refused the message: {response.status_code} {message}")


def _error_code(response: httpx.Response) -> tuple[int, str]:
    """(errcode, errmsg) from an answer; WeCom/DingTalk say errcode, Feishu code or StatusCode."""
    try:
        answer = response.json()
    except ValueError:
        return 0, response.text[:200]
    if not isinstance(answer, dict):
        return 0, ""
    for code_field, message_field in (
        ("errcode", "errmsg"),
        ("code", "msg"),
        ("StatusCode", "StatusMessage"),
    ):
        if code_field in answer:
            try:
                return int(answer[code_field]), str(answer.get(message_field, ""))
            except (TypeError, ValueError):
                return 0, ""
    return 0, ""
