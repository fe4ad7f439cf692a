"""The notify activity: tell a person (inbox task, mail) and their team (chat robot), once per key.

Every channel claims its (key, channel) `Delivery` row before it sends, and marks it sent right
after, so a retried attempt or a restarted worker skips what already went out and sends only
what did not.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    pass_context,
)
from jinja2.runtime import Context
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.chat import RobotKind, post_robot
from activities.mail import compose, message_id, send_mail
from domain import notification, task
from domain.approval import ApprovalDecision, link_token
from domain.db import transaction
from domain.notification import (
    Channel,
    ChannelResult,
    DeliveryOutcome,
    DeliveryStatus,
    Notice,
    NoticeOutcome,
)
from domain.settings import Settings
from domain.user import Team, User

TEMPLATES = Path(__file__).parent / "templates"
LOCALES = ("zh-CN", "en")
_WEEKDAYS_ZH = "一二三四五六日"


@dataclass(frozen=True)
class Audience:
    """Who hears of a notice, read once so no session stays open while mail and chat go out."""

    recipient_id: int | None
    name: str
    email: str | None
    active: bool
    locale: str
    team_id: int | None
    robot_kind: str | None
    robot_url: str | None
    robot_secret: str | None


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class ChatText:
    title: str
    text: str


class Templates:
    """Jinja2 notices: the same files render plain (subject, text, chat) and HTML-escaped (html)."""

    def __init__(self, settings: Settings) -> None:
        self.zone = ZoneInfo(settings.timezone)
        self.base_url = settings.base_url.rstrip("/")
        self.settings = settings
        common: dict[str, Any] = {
            "loader": FileSystemLoader(TEMPLATES),
            "undefined": StrictUndefined,
            "trim_blocks": True,
            "lstrip_blocks": True,
        }
        self.plain = Environment(autoescape=False, **common)
        self.html = Environment(autoescape=True, **common)
        for env in (self.plain, self.html):
            env.filters["when"] = self._when
            env.globals["approval_link"] = self._approval_link

    def mail(self, notice: Notice, locale: str, recipient: str) -> Mail:
        name = f"mail/{locale}/{notice.template}.j2"
        context = self._context(notice, locale, recipient)
        return Mail(
            subject=" ".join(self._render(self.plain, name, context, part="subject").split()),
            text=self._render(self.plain, name, context, part="text"),
            html=self._render(self.html, name, context, part="html"),
        )

    def chat(self, notice: Notice, locale: str, recipient: str, *, markdown: bool) -> ChatText:
        name = f"chat/{locale}/{notice.template}.j2"
        context = {**self._context(notice, locale, recipient), "markdown": markdown}
        return ChatText(
            title=" ".join(self._render(self.plain, name, context, part="title").split()),
            text=self._render(self.plain, name, context, part="text"),
        )

    def _context(self, notice: Notice, locale: str, recipient: str) -> dict[str, Any]:
        params = dict(notice.params)
        if params.get("due") is None and notice.due_at is not None:
            params["due"] = notice.due_at.isoformat()
        path = params.get("path")
        link = None
        if isinstance(path, str) and path:
            link = self.base_url + (path if path.startswith("/") else f"/{path}")
        return {
            "params": params,
            "recipient": recipient,
            "link": link,
            "locale": locale,
            "base": self.base_url,
        }

    @staticmethod
    def _render(env: Environment, name: str, context: dict[str, Any], *, part: str) -> str:
        rendered = env.get_template(name).render(context, part=part)
        rendered = re.sub(r"(?m)^[ \t]+|[ \t]+$", "", re.sub(r"[ \t]{2,}", " ", rendered))
        return re.sub(r"\n{3,}", "\n\n", rendered).strip()

    @pass_context
    def _approval_link(self, context: Context, decision: str) -> str:
        """A signed one-click answer for the notice's approval row and its recipient. Signed
        here, when the mail is made, so the token never enters a workflow's history."""
        params = context["params"]
        ttl = timedelta(seconds=int(params.get("link_ttl_seconds") or 7 * 86_400))
        token = link_token(
            self.settings.signing_key(),
            approval_id=int(params["approval_id"]),
            user_id=int(params["assignee_id"]),
            decision=ApprovalDecision(decision),
            expires_at=datetime.now(UTC) + ttl,
        )
        return f"{self.base_url}/approvals/link/{token}"

    @pass_context
    def _when(self, context: Context, value: str | datetime | None) -> str:
        """An ISO time as a sales rep reads it: local time zone, no seconds, day and weekday."""
        if value is None:
            return ""
        try:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        except ValueError:
            return str(value)
        if moment.tzinfo is not None:
            moment = moment.astimezone(self.zone)
        if context.get("locale") == "en":
            return f"{moment:%a} {moment.day} {moment:%b} {moment:%H:%M}"
        return f"{moment.month}月{moment.day}日（周{_WEEKDAYS_ZH[moment.weekday()]}）{moment:%H:%M}"


class NotifyActivities:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], settings: Settings) -> None:
        self.sessions = sessions
        self.settings = settings
        self.templates = Templates(settings)

    @activity.defn(name="notify")
    async def notify(self, notice: Notice) -> NoticeOutcome:
        """Send a notice on each of its channels, at most once per (key, channel).

        Channels are independent: a mail relay that is down does not hold back the chat post.
        A transient failure (no connection, 5xx, rate limit) is raised after the other channels
        had their turn, leaving its delivery pending so Temporal's retry sends it. A permanent
        refusal is recorded as failed and raised as a non-retryable error carrying the outcome.
        """
        audience = await self._audience(notice)
        try:
            mail = (
                self.templates.mail(notice, audience.locale, audience.name)
                if audience.recipient_id is not None
                else None
            )
            chat = (
                self.templates.chat(
                    notice,
                    self._locale(None),
                    audience.name,
                    markdown=audience.robot_kind != RobotKind.feishu,
                )
                if Channel.chat in notice.channels and audience.robot_url
                else None
            )
        except TemplateError as exc:
            raise ApplicationError(
                f"cannot render notice template {notice.template!r}: {exc}",
                type="NoticeTemplateError",
                non_retryable=True,
            ) from exc

        outcome = NoticeOutcome()
        errors: list[Exception] = []
        for channel in dict.fromkeys(notice.channels):
            try:
                if channel is Channel.in_app:
                    result, outcome.task_id = await self._in_app(notice, audience, mail)
                elif channel is Channel.email:
                    result = await self._email(notice, audience, mail)
                else:
                    result = await self._chat(notice, audience, chat)
            except Exception as exc:  # the others still get their turn; raised below
                activity.logger.warning("notice %s: %s failed: %r", notice.key, channel, exc)
                errors.append(exc)
                continue
            outcome.channels[channel] = result
        if errors:
            raise errors[0]
        refused = {
            c: r.reason for c, r in outcome.channels.items() if r.outcome is DeliveryOutcome.failed
        }
        if refused:
            raise ApplicationError(
                "; ".join(f"{channel}: {reason}" for channel, reason in refused.items()),
                outcome.model_dump(mode="json"),
                type="NoticeRejected",
                non_retryable=True,
            )
        return outcome

    def _locale(self, wanted: str | None) -> str:
        for locale in (wanted, self.settings.default_locale):
            if locale in LOCALES:
                return locale
        return LOCALES[0]

    async def _audience(self, notice: Notice) -> Audience:
        async with self.sessions() as session:
            person = (
                await session.get(User, notice.recipient_id)
                if notice.recipient_id is not None
                else None
            )
            team_id = (
                notice.team_id
                if notice.team_id is not None
                else (person.team_id if person is not None else None)
            )
            team = await session.get(Team, team_id) if team_id is not None else None
        return Audience(
            recipient_id=person.id if person else None,
            name=person.display_name if person else "",
            email=person.email if person else None,
            active=person.active if person else False,
            locale=self._locale(person.locale if person else None),
            team_id=team.id if team else None,
            robot_kind=team.robot_kind if team else None,
            robot_url=team.robot_url if team else None,
            robot_secret=team.robot_secret if team else None,
        )

    async def _in_app(
        self, notice: Notice, audience: Audience, mail: Mail | None
    ) -> tuple[ChannelResult, int | None]:
        """The inbox task; claim, task and mark are one transaction, so it is all or nothing."""
        async with transaction(self.sessions) as session:
            row = await notification.claim(
                session,
                key=notice.key,
                channel=Channel.in_app,
                recipient_id=audience.recipient_id,
                team_id=audience.team_id,
            )
            if notification.is_done(row):
                existing = await session.scalar(task.select_by_key(notice.key))
                return _already(row), existing.id if existing else None
            if mail is None:  # rendered exactly when there is a recipient
                return await self._skip(session, row.id, "no recipient"), None
            todo = await task.open_task(
                session,
                new=task.NewTask(
                    key=notice.key,
                    kind=notice.task_kind or notice.template,
                    title=mail.subject[:300],
                    assignee_id=audience.recipient_id,
                    customer_id=notice.customer_id,
                    ref_entity=notice.ref_entity,
                    ref_id=notice.ref_id,
                    workflow_id=activity.info().workflow_id,
                    due_at=notice.due_at,
                    detail={"template": notice.template, "params": notice.params},
                ),
            )
            await notification.finish(
                session,
                delivery_id=row.id,
                status=DeliveryStatus.sent,
                detail={"task_id": todo.id},
            )
            return ChannelResult(outcome=DeliveryOutcome.sent), todo.id

    async def _email(self, notice: Notice, audience: Audience, mail: Mail | None) -> ChannelResult:
        skip = None
        if mail is None:
            skip = "no recipient"
        elif not audience.active:
            skip = "recipient is inactive"
        elif not audience.email:
            skip = "recipient has no email address"
        elif self.settings.smtp_host is None:
            skip = "SMTP is not configured"

        async def send() -> dict[str, Any]:
            assert mail is not None and audience.email is not None
            message = compose(
                self.settings,
                key=notice.key,
                to_name=audience.name,
                to_address=audience.email,
                subject=mail.subject,
                text=mail.text,
                html=mail.html,
            )
            await send_mail(self.settings, message)
            return {"to": audience.email, "message_id": message_id(self.settings, notice.key)}

        return await self._once(notice, Channel.email, audience, skip, send)

    async def _chat(
        self, notice: Notice, audience: Audience, chat: ChatText | None
    ) -> ChannelResult:
        skip = None
        if audience.team_id is None:
            skip = "no team"
        elif chat is None or not audience.robot_kind or not audience.robot_url:
            skip = "the team has no chat robot"

        async def send() -> dict[str, Any]:
            assert chat is not None and audience.robot_kind and audience.robot_url
            await post_robot(
                audience.robot_kind,
                audience.robot_url,
                audience.robot_secret,
                chat.title,
                chat.text,
                http_timeout=self.settings.robot_timeout,
            )
            return {"robot": audience.robot_kind}

        return await self._once(notice, Channel.chat, audience, skip, send)

    async def _once(
        self,
        notice: Notice,
        channel: Channel,
        audience: Audience,
        skip: str | None,
        send: Callable[[], Awaitable[dict[str, Any]]],
    ) -> ChannelResult:
        """Claim, send outside any transaction, then mark in a short one of its own.

        Between the send and the mark lies the one window a crash can resend in; mail carries a
        Message-ID fixed by the key for that reason.
        """
        async with transaction(self.sessions) as session:
            row = await notification.claim(
                session,
                key=notice.key,
                channel=channel,
                recipient_id=audience.recipient_id,
                team_id=audience.team_id,
            )
            if notification.is_done(row):
                return _already(row)
            if skip is not None:
                return await self._skip(session, row.id, skip)
            delivery_id = row.id
        try:
            detail = await send()
        except notification.Rejected as exc:
            async with transaction(self.sessions) as session:
                await notification.finish(
                    session,
                    delivery_id=delivery_id,
                    status=DeliveryStatus.failed,
                    detail={"reason": str(exc)},
                )
            return ChannelResult(outcome=DeliveryOutcome.failed, reason=str(exc))
        async with transaction(self.sessions) as session:
            await notification.finish(
                session, delivery_id=delivery_id, status=DeliveryStatus.sent, detail=detail
            )
        return ChannelResult(outcome=DeliveryOutcome.sent)

    @staticmethod
    async def _skip(session: AsyncSession, delivery_id: int, reason: str) -> ChannelResult:
        await notification.finish(
            session,
            delivery_id=delivery_id,
            status=DeliveryStatus.skipped,
            detail={"reason": reason},
        )
        return ChannelResult(outcome=DeliveryOutcome.skipped, reason=reason)


def _already(row: notification.Delivery) -> ChannelResult:
    reason = row.detail.get("reason") if row.status == DeliveryStatus.skipped else None
    return ChannelResult(
        outcome=DeliveryOutcome.already,
        reason=f"{row.status} earlier" + (f": {reason}" if reason else ""),
    )
