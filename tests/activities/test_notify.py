"""The notify activity against a real SMTP sink, a real HTTP robot sink and the real database."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.chat import post_robot
from activities.notify import NotifyActivities
from domain import notification
from domain.db import transaction
from domain.notification import Channel, DeliveryOutcome, DeliveryStatus, Notice, NoticeOutcome
from domain.settings import Settings
from domain.task import Task
from domain.user import Team, User
from tests.conftest import MakeUser

if TYPE_CHECKING:
    from tests.sinks import ChatSink, SmtpSink

MakeTeam = Callable[..., Awaitable[int]]
DUE = datetime(2024, 5, 6, 2, 30, tzinfo=UTC)  # Monday 10:30 in Asia/Shanghai
PARAMS: dict[str, str | int | None] = {"company": "杭州云帆科技", "path": "/leads/42"}


@pytest.fixture
def mail_settings(smtp_sink: SmtpSink) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=smtp_sink.port,
        smtp_timeout=5,
        robot_timeout=5,
        mail_from="Dossier <crm@example.cn>",
        public_url="https://crm.example.cn",
    )


@pytest.fixture
def notify(
    sessions: async_sessionmaker[AsyncSession], mail_settings: Settings
) -> Callable[[Notice], Awaitable[NoticeOutcome]]:
    """Run the activity as a worker would, in an activity context."""
    activities = NotifyActivities(sessions, mail_settings)

    async def run(notice: Notice) -> NoticeOutcome:
        return await ActivityEnvironment().run(activities.notify, notice)

    return run


async def _robot(
    sessions: async_sessionmaker[AsyncSession],
    team_id: int,
    kind: str,
    url: str,
    secret: str | None = None,
) -> None:
    async with transaction(sessions) as session:
        team = await session.get(Team, team_id)
        assert team is not None
        team.robot_kind, team.robot_url, team.robot_secret = kind, url, secret


async def _rep(
    make_user: MakeUser, make_team: MakeTeam, *, locale: str = "zh-CN", email: str | None = None
) -> User:
    team_id = await make_team(f"华东销售-{locale}")
    return await make_user(
        f"rep-{locale}", team_id=team_id, locale=locale, email=email or f"rep-{locale}@example.cn"
    )


async def _count(sessions: async_sessionmaker[AsyncSession], model: type, **where: object) -> int:
    async with sessions() as session:
        query = select(func.count()).select_from(model).filter_by(**where)
        return (await session.scalar(query)) or 0


async def _delivery(
    sessions: async_sessionmaker[AsyncSession], key: str, channel: Channel
) -> notification.Delivery:
    async with sessions() as session:
        row = await session.scalar(
            select(notification.Delivery).filter_by(key=key, channel=channel.value)
        )
        assert row is not None
        return row


def _bodies(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


async def test_mail_speaks_the_recipients_language(
    notify, smtp_sink: SmtpSink, make_user: MakeUser, make_team: MakeTeam
) -> None:
    zh = await _rep(make_user, make_team, locale="zh-CN")
    en = await _rep(make_user, make_team, locale="en")

    for rep in (zh, en):
        await notify(
            Notice(
                key=f"lead-42/assigned/{rep.id}",
                template="lead.assigned",
                recipient_id=rep.id,
                params=PARAMS,
                due_at=DUE,
                channels=[Channel.email],
            )
        )

    first, second = await smtp_sink.wait_for(2)
    assert first["To"].addresses[0].addr_spec == zh.email
    assert first["Subject"] == "新线索「杭州云帆科技」已分配给你"
    text, html = _bodies(first)
    assert "请在 5月6日（周一）10:30 前首次联系" in text
    assert "https://crm.example.cn/leads/42" in text
    assert 'href="https://crm.example.cn/leads/42"' in html
    assert second["To"].addresses[0].addr_spec == en.email
    assert second["Subject"] == 'New lead "杭州云帆科技" assigned to you'
    assert "Please make first contact by Mon 6 May 10:30" in _bodies(second)[0]
    assert first["Message-ID"] != second["Message-ID"]
    assert first["Message-ID"].endswith("@example.cn>")
    assert first["Auto-Submitted"] == "auto-generated"


async def test_a_repeated_key_notifies_once_and_a_new_key_again(
    notify,
    smtp_sink: SmtpSink,
    chat_sink: ChatSink,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    make_team: MakeTeam,
) -> None:
    rep = await _rep(make_user, make_team)
    assert rep.team_id is not None
    await _robot(sessions, rep.team_id, "wecom", chat_sink.url("/cgi-bin/webhook/send?key=k1"))
    notice = Notice(
        key="lead-42/remind",
        template="lead.remind_owner",
        recipient_id=rep.id,
        params=PARAMS,
        due_at=DUE,
        customer_id=None,
        ref_entity="lead",
        ref_id=42,
    )

    first = await notify(notice)
    again = await notify(notice)

    assert {c: r.outcome for c, r in first.channels.items()} == {
        Channel.in_app: DeliveryOutcome.sent,
        Channel.email: DeliveryOutcome.sent,
        Channel.chat: DeliveryOutcome.sent,
    }
    assert {r.outcome for r in again.channels.values()} == {DeliveryOutcome.already}
    assert again.task_id == first.task_id is not None
    await smtp_sink.wait_for(1)
    await chat_sink.wait_for(1)
    assert len(smtp_sink.messages) == 1
    assert len(chat_sink.requests) == 1
    assert await _count(sessions, Task, key=notice.key) == 1
    async with sessions() as session:
        todo = await session.get(Task, first.task_id)
    assert todo is not None
    assert todo.title == "提醒：线索「杭州云帆科技」尚未首次联系"
    assert (todo.assignee_id, todo.kind, todo.due_at) == (rep.id, "lead.remind_owner", DUE)
    assert (todo.ref_entity, todo.ref_id) == ("lead", 42)

    later = await notify(notice.model_copy(update={"key": "lead-42/remind-2"}))

    assert {r.outcome for r in later.channels.values()} == {DeliveryOutcome.sent}
    await smtp_sink.wait_for(2)
    await chat_sink.wait_for(2)
    assert await _count(sessions, Task, assignee_id=rep.id) == 2
    assert smtp_sink.messages[0]["Message-ID"] != smtp_sink.messages[1]["Message-ID"]


async def test_wecom_gets_markdown(
    notify,
    chat_sink: ChatSink,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    make_team: MakeTeam,
) -> None:
    rep = await _rep(make_user, make_team)
    assert rep.team_id is not None
    await _robot(sessions, rep.team_id, "wecom", chat_sink.url("/cgi-bin/webhook/send?key=abc"))

    await notify(
        Notice(
            key="lead-42/assigned",
            template="lead.assigned",
            recipient_id=rep.id,
            params=PARAMS,
            due_at=DUE,
            channels=[Channel.chat],
        )
    )

    (request,) = await chat_sink.wait_for(1)
    assert request.path == "/cgi-bin/webhook/send"
    assert request.query == {"key": "abc"}
    assert request.body["msgtype"] == "markdown"
    content = request.body["markdown"]["content"]
    assert content.startswith("**新线索分配**")
    assert "线索「杭州云帆科技」已分配给 rep-zh-CN，请在 5月6日（周一）10:30 前首次联系" in content
    assert "[查看详情](https://crm.example.cn/leads/42)" in content


async def test_dingtalk_gets_markdown_and_a_signature_that_verifies(
    notify,
    chat_sink: ChatSink,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    make_team: MakeTeam,
) -> None:
    secret = "SEC0123456789abcdef+/="
    rep = await _rep(make_user, make_team)
    assert rep.team_id is not None
    await _robot(
        sessions, rep.team_id, "dingtalk", chat_sink.url("/robot/send?access_token=tok"), secret
    )

    await notify(
        Notice(
            key="lead-42/escalate",
            template="lead.escalate_manager",
            recipient_id=rep.id,
            params={**PARAMS, "owner": "王磊", "due": DUE.isoformat()},
            channels=[Channel.chat],
        )
    )

    (request,) = await chat_sink.wait_for(1)
    assert request.path == "/robot/send"
    assert request.query["access_token"] == "tok"
    timestamp = request.query["timestamp"]
    assert abs(int(timestamp) - datetime.now(UTC).timestamp() * 1000) < 60_000
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()
    assert request.query["sign"] == expected
    assert "+" not in request.raw_query.partition("sign=")[2]  # URL-encoded, as DingTalk asks
    assert request.body["msgtype"] == "markdown"
    assert request.body["markdown"]["title"] == "线索超时升级"
    assert "王磊 的线索「杭州云帆科技」已超过首次联系时限" in request.body["markdown"]["text"]


async def test_feishu_gets_text_and_a_signed_body(
    notify,
    chat_sink: ChatSink,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    make_team: MakeTeam,
) -> None:
    secret = "feishu-secret"
    rep = await _rep(make_user, make_team)
    assert rep.team_id is not None
    await _robot(
        sessions, rep.team_id, "feishu", chat_sink.url("/open-apis/bot/v2/hook/h00k"), secret
    )

    await notify(
        Notice(
            key="lead-42/pool",
            template="lead.returned_to_pool",
            recipient_id=rep.id,
            params=PARAMS,
            channels=[Channel.chat],
        )
    )

    (request,) = await chat_sink.wait_for(1)
    assert request.path == "/open-apis/bot/v2/hook/h00k"
    body = request.body
    assert body["msg_type"] == "text"
    assert body["content"]["text"].startswith("线索退回公海\n")
    assert "查看详情：https://crm.example.cn/leads/42" in body["content"]["text"]
    assert "[" not in body["content"]["text"]  # plain text, not markdown
    string_to_sign = f"{body['timestamp']}\n{secret}".encode()
    expected = base64.b64encode(hmac.new(string_to_sign, b"", hashlib.sha256).digest()).decode()
    assert body["sign"] == expected


async def test_no_address_or_no_smtp_skips_mail_but_not_the_task(
    sessions: async_sessionmaker[AsyncSession],
    smtp_sink: SmtpSink,
    mail_settings: Settings,
    make_user: MakeUser,
    make_team: MakeTeam,
) -> None:
    team_id = await make_team("华南销售")
    silent = await make_user("no-mail", team_id=team_id)
    reachable = await make_user("has-mail", team_id=team_id, email="has-mail@example.cn")
    no_smtp = NotifyActivities(sessions, mail_settings.model_copy(update={"smtp_host": None}))
    with_smtp = NotifyActivities(sessions, mail_settings)

    no_address = await ActivityEnvironment().run(
        with_smtp.notify,
        Notice(key="a/1", template="lead.assigned", recipient_id=silent.id, params=PARAMS),
    )
    smtp_off = await ActivityEnvironment().run(
        no_smtp.notify,
        Notice(key="a/2", template="lead.assigned", recipient_id=reachable.id, params=PARAMS),
    )

    for outcome, reason in (
        (no_address, "recipient has no email address"),
        (smtp_off, "SMTP is not configured"),
    ):
        assert outcome.channels[Channel.email].outcome is DeliveryOutcome.skipped
        assert outcome.channels[Channel.email].reason == reason
        assert outcome.channels[Channel.chat].outcome is DeliveryOutcome.skipped
        assert outcome.channels[Channel.in_app].outcome is DeliveryOutcome.sent
        assert outcome.task_id is not None
    assert await _count(sessions, Task) == 2
    assert smtp_sink.messages == []
    assert (await _delivery(sessions, "a/1", Channel.email)).status == DeliveryStatus.skipped


async def test_robot_500_is_retried_and_sends_once_it_recovers(
    notify,
    smtp_sink: SmtpSink,
    chat_sink: ChatSink,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    make_team: MakeTeam,
) -> None:
    rep = await _rep(make_user, make_team)
    assert rep.team_id is not None
    await _robot(sessions, rep.team_id, "wecom", chat_sink.url("/send?key=k"))
    notice = Notice(
        key="lead-7/remind",
        template="lead.remind_owner",
        recipient_id=rep.id,
        params=PARAMS,
        due_at=DUE,
    )
    chat_sink.status, chat_sink.answer = 500, {"errcode": -1, "errmsg": "system busy"}

    with pytest.raises(httpx.HTTPStatusError):
        await notify(notice)

    assert (await _delivery(sessions, notice.key, Channel.chat)).status == DeliveryStatus.pending
    await smtp_sink.wait_for(1)  # the mail went out regardless

    chat_sink.status, chat_sink.answer = 200, {"errcode": 0, "errmsg": "ok"}
    retried = await notify(notice)

    assert retried.channels[Channel.chat].outcome is DeliveryOutcome.sent
    assert retried.channels[Channel.email].outcome is DeliveryOutcome.already
    assert retried.channels[Channel.in_app].outcome is DeliveryOutcome.already
    assert [r.status for r in chat_sink.requests] == [500, 200]
    assert len(smtp_sink.messages) == 1
    assert await _count(sessions, Task, key=notice.key) == 1


async def test_robot_400_is_a_permanent_failure_recorded(
    notify,
    smtp_sink: SmtpSink,
    chat_sink: ChatSink,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    make_team: MakeTeam,
) -> None:
    rep = await _rep(make_user, make_team)
    assert rep.team_id is not None
    await _robot(sessions, rep.team_id, "dingtalk", chat_sink.url("/robot/send?access_token=x"))
    chat_sink.status, chat_sink.answer = 400, {"errcode": 300001, "errmsg": "token is not exist"}
    notice = Notice(
        key="lead-8/assigned", template="lead.assigned", recipient_id=rep.id, params=PARAMS
    )

    with pytest.raises(ApplicationError) as raised:
        await notify(notice)

    assert raised.value.non_retryable
    assert raised.value.type == "NoticeRejected"
    assert "token is not exist" in raised.value.message
    outcome = NoticeOutcome.model_validate(raised.value.details[0])
    assert outcome.channels[Channel.chat].outcome is DeliveryOutcome.failed
    assert outcome.channels[Channel.email].outcome is DeliveryOutcome.sent
    row = await _delivery(sessions, notice.key, Channel.chat)
    assert row.status == DeliveryStatus.failed
    assert "400" in row.detail["reason"]
    assert len(await smtp_sink.wait_for(1)) == 1


async def test_refused_recipient_is_permanent_and_a_busy_relay_is_retried(
    notify,
    smtp_sink: SmtpSink,
    sessions: async_sessionmaker[AsyncSession],
    make_user: MakeUser,
    make_team: MakeTeam,
) -> None:
    rep = await _rep(make_user, make_team)
    smtp_sink.refuse = "450 4.2.1 mailbox busy, try later"
    busy = Notice(
        key="n/busy",
        template="lead.assigned",
        recipient_id=rep.id,
        params=PARAMS,
        channels=[Channel.email],
    )

    with pytest.raises(Exception) as transient:
        await notify(busy)

    assert not isinstance(transient.value, ApplicationError)
    assert (await _delivery(sessions, busy.key, Channel.email)).status == DeliveryStatus.pending

    smtp_sink.refuse = "550 5.1.1 no such mailbox"
    with pytest.raises(ApplicationError) as permanent:
        await notify(busy.model_copy(update={"key": "n/refused"}))

    assert permanent.value.non_retryable
    row = await _delivery(sessions, "n/refused", Channel.email)
    assert (row.status, row.detail["reason"]) == (
        DeliveryStatus.failed,
        "SMTP 550 5.1.1 no such mailbox",
    )

    smtp_sink.refuse = None
    assert (await notify(busy)).channels[Channel.email].outcome is DeliveryOutcome.sent
    assert len(await smtp_sink.wait_for(1)) == 1


async def test_an_unknown_template_fails_before_anything_is_sent(
    notify, sessions: async_sessionmaker[AsyncSession], make_user: MakeUser, make_team: MakeTeam
) -> None:
    rep = await _rep(make_user, make_team)

    with pytest.raises(ApplicationError) as raised:
        await notify(Notice(key="x/1", template="lead.nonexistent", recipient_id=rep.id))

    assert raised.value.non_retryable
    assert raised.value.type == "NoticeTemplateError"
    assert await _count(sessions, notification.Delivery) == 0
    assert await _count(sessions, Task) == 0


async def test_a_notice_with_only_the_lead_id_still_reads_well(
    notify, smtp_sink: SmtpSink, make_user: MakeUser, make_team: MakeTeam
) -> None:
    rep = await _rep(make_user, make_team)

    await notify(
        Notice(
            key="lead-42/1.assigned/lead.assigned",
            template="lead.assigned",
            recipient_id=rep.id,
            params={"lead_id": 42, "path": "/leads/42"},
            channels=[Channel.email],
        )
    )

    (message,) = await smtp_sink.wait_for(1)
    assert message["Subject"] == "新线索 #42 已分配给你"
    assert "线索 #42 已分配给你。" in _bodies(message)[0]


async def test_robot_error_codes_in_a_200_answer(chat_sink: ChatSink) -> None:
    url = chat_sink.url("/robot/send?access_token=t")
    chat_sink.answer = {"errcode": 310000, "errmsg": "sign not match"}
    with pytest.raises(notification.Rejected, match="sign not match"):
        await post_robot("dingtalk", url, "s", "标题", "正文")

    chat_sink.answer = {"errcode": 130101, "errmsg": "send too fast"}
    with pytest.raises(Exception, match="rate limited") as busy:
        await post_robot("dingtalk", url, None, "标题", "正文")
    assert not isinstance(busy.value, notification.Rejected)

    chat_sink.answer = {"code": 0, "msg": "success", "data": {}}
    await post_robot("feishu", url, None, "标题", "正文")
    with pytest.raises(notification.Rejected, match="unknown chat robot kind"):
        await post_robot("slack", url, None, "标题", "正文")
