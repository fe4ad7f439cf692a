"""The approval mail signs its own one-click links, one per decision, for its recipient only."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import SecretStr

from activities.notify import Templates
from domain.approval import ApprovalDecision, read_link
from domain.notification import Notice
from domain.settings import Settings

KEY = "approval-mail-test-" + "k" * 32


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_each_decision_has_a_link_that_names_the_row_the_approver_and_expires(
    locale: str,
) -> None:
    templates = Templates(Settings(secret_key=SecretStr(KEY), public_url="https://crm.example.cn"))
    notice = Notice(
        key="contract-7/1.0.41/approval.requested",
        template="approval.requested",
        recipient_id=3,
        params={"title": "HT-2026-000007 冷库设备", "approval_id": 41, "assignee_id": 3,
                "link_ttl_seconds": 3600, "path": "/contracts/7"},
    )
    mail = templates.mail(notice, locale, "法务小陈")

    tokens = re.findall(r"https://crm\.example\.cn/approvals/link/([\w.\-]+)", mail.text)
    claims = [read_link(KEY, token) for token in tokens]
    assert [(c.approval_id, c.user_id) for c in claims] == [(41, 3)] * 3
    assert [c.decision for c in claims] == list(ApprovalDecision)
    expires = datetime.fromtimestamp(jwt.decode(tokens[0], KEY, algorithms=["HS256"])["exp"], UTC)
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    assert all(token in mail.html for token in tokens)
