"""Real SMTP both ways with a real worker on the dev server: a mail to the support address
becomes a ticket, the agent's reply goes out threaded, the customer's answer becomes a comment
on the same ticket, and the survey link in the resolution mail works exactly once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiosmtplib
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from api.ticket_mail import SupportInbox, start_server
from domain.settings import Settings
from domain.task import Task
from domain.ticket import Ticket, TicketAttachment, TicketComment
from tests.conftest import wait_until
from tests.sinks import SmtpSink
from tests.tickets import ServiceTeam, ticket_row

SUPPORT = "support@dossier.test"


@pytest.fixture
def settings(settings: Settings, smtp_sink: SmtpSink) -> Settings:
    return settings.model_copy(update={
        "smtp_host": "127.0.0.1", "smtp_port": smtp_sink.port, "support_address": SUPPORT})


@pytest.fixture
async def inbox_port(
    sessions: async_sessionmaker[AsyncSession], temporal_client: Client, settings: Settings
) -> AsyncIterator[int]:
    """The support mailbox (`dossier mail-in`) on a free loopback port."""
    server = await start_server(SupportInbox(sessions, temporal_client, settings), "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def _send(port: int, *, subject: str, message_id: str, body: str,
                to: str = SUPPORT, in_reply_to: str | None = None) -> None:
    mail = EmailMessage()
    mail["From"] = "王女士 <Wang@Example.cn>"
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = message_id
    if in_reply_to:
        mail["In-Reply-To"] = in_reply_to
        mail["References"] = in_reply_to
    mail.set_content(body)
    await aiosmtplib.send(mail, hostname="127.0.0.1", port=port)


async def _tickets(sessions: async_sessionmaker[AsyncSession]) -> list[Ticket]:
    async with sessions() as session:
        return list((await session.scalars(select(Ticket).order_by(Ticket.id))).all())


async def test_mail_becomes_a_ticket_a_reply_a_comment_and_the_survey_link_works_once(
    client: httpx.AsyncClient, worker: Worker, sessions: async_sessionmaker[AsyncSession],
    service_team: ServiceTeam, admin: dict[str, str], smtp_sink: SmtpSink, inbox_port: int,
) -> None:
    customer = await client.post("/api/customers", headers=admin, json={
        "kind": "person", "name": "王女士", "email": "wang@example.cn"})
    assert customer.status_code == 201, customer.text
    await _send(inbox_port, subject="打印机无法开机", message_id="<first@example.cn>",
                body="按电源键没有反应。\n\n谢谢")

    async def opened() -> bool:
        found = await _tickets(sessions)
        return bool(found) and found[0].assignee_id is not None

    await wait_until(opened, seconds=30)
    ticket = (await _tickets(sessions))[0]
    assert (ticket.channel, ticket.type) == ("email", "consultation")
    assert ticket.subject == "打印机无法开机"
    assert ticket.customer_id == customer.json()["id"]
    assert ticket.requester_email == "wang@example.cn" and ticket.thread_id == "<first@example.cn>"
    assert ticket.description == "按电源键没有反应。\n\n谢谢"

    # A redelivery of the same mail is the same ticket; a stranger mailbox is refused.
    await _send(inbox_port, subject="打印机无法开机", message_id="<first@example.cn>", body="x")
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        await _send(inbox_port, subject="hi", message_id="<x@example.cn>", body="x",
                    to="nobody@dossier.test")
    assert len(await _tickets(sessions)) == 1

    agent = service_team.headers["agent1"]
    replied = await client.post(f"/api/tickets/{ticket.id}/comments", headers=agent, json={
        "body": "请确认电源线是否插好", "wait_for_customer": True})
    assert replied.status_code == 201, replied.text
    assert replied.json()["status"] == "waiting_on_customer"

    def to_customer() -> list[EmailMessage]:
        return [m for m in smtp_sink.messages if "wang@example.cn" in m["To"]]

    async def reply_mailed() -> bool:
        return len(to_customer()) == 1

    await wait_until(reply_mailed, seconds=30)
    out = to_customer()[0]
    assert out["Subject"] == f"[#T-{ticket.id}] 打印机无法开机"
    assert out["In-Reply-To"] == "<first@example.cn>" and out["From"] == SUPPORT
    assert "请确认电源线是否插好" in out.get_body(("plain",)).get_content()

    await _send(inbox_port, subject=f"Re: {out['Subject']}", message_id="<second@example.cn>",
                in_reply_to=out["Message-ID"],
                body="插好了，还是不行。\n\n在 2026年12月3日 写道：\n> 请确认电源线是否插好")

    async def resumed() -> bool:
        row = await ticket_row(sessions, ticket.id)
        return row.status == "in_progress" and not row.sla_paused

    await wait_until(resumed, seconds=30)
    async with sessions() as session:
        comments = (await session.scalars(
            select(TicketComment).where(TicketComment.ticket_id == ticket.id)
            .order_by(TicketComment.id))).all()
    assert [(c.from_customer, c.body) for c in comments] == [
        (False, "请确认电源线是否插好"), (True, "插好了，还是不行。")]
    row = await ticket_row(sessions, ticket.id)
    assert not row.sla_paused and row.next_response_due_at is not None

    resolved = await client.post(f"/api/tickets/{ticket.id}/resolve", headers=agent, json={})
    assert resolved.status_code == 200, resolved.text

    async def surveyed() -> bool:
        return len(to_customer()) == 2

    await wait_until(surveyed, seconds=30)
    text = to_customer()[1].get_body(("plain",)).get_content()
    path = re.search(r"https?://[^/\s]+(/surveys/[\w.\-]+)", text)
    assert path is not None, text
    page = await client.get(path.group(1))
    assert page.status_code == 200 and "打印机无法开机" in page.text
    assert (await ticket_row(sessions, ticket.id)).csat is None  # GET changes nothing

    token = path.group(1).rsplit("/", 1)[1]
    bad = await client.post(f"/api/surveys/{token}", json={"score": 9})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"][-1] == "score"
    answered = await client.post(f"/api/surveys/{token}", json={"score": 2, "comment": "太慢"})
    assert answered.status_code == 200, answered.text
    again = await client.post(f"/api/surveys/{token}", json={"score": 5})
    assert again.status_code == 409 and again.json()["detail"][0]["loc"] == ["token"]
    assert (await client.get(path.group(1))).status_code == 409
    forged = await client.post(f"/api/surveys/{token[:-3]}abc", json={"score": 5})
    assert forged.status_code == 403

    row = await ticket_row(sessions, ticket.id)
    assert (row.csat, row.csat_comment, row.first_contact_resolution) == (2, "太慢", True)
    async with sessions() as session:
        visit = await session.scalar(select(Task).where(Task.kind == "ticket.follow_up_visit"))
    assert visit is not None and visit.assignee_id == service_team.ids["lead"]
    timeline = (await client.get(f"/api/customers/{row.customer_id}/timeline",
                                 headers=admin)).json()
    kinds = {item["kind"] for item in timeline["items"]}
    assert {"ticket.created", "ticket.reply", "ticket.customer_reply", "ticket.resolve",
            "ticket.survey"} <= kinds


async def test_mail_attachments_are_kept_like_uploads_and_refused_ones_are_dropped(
    client: httpx.AsyncClient, worker: Worker, sessions: async_sessionmaker[AsyncSession],
    service_team: ServiceTeam, inbox_port: int, settings: Settings,
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64
    mail = EmailMessage()
    mail["From"] = "王女士 <wang@example.cn>"
    mail["To"] = SUPPORT
    mail["Subject"] = "屏幕有裂痕"
    mail["Message-ID"] = "<with-files@example.cn>"
    mail.set_content("见附件照片")
    mail.add_attachment(png, maintype="application", subtype="octet-stream",
                        filename="../照片.png")  # the sender's type and path count for nothing
    mail.add_attachment(b"MZ\x90\x00\x03\x00\x00\x00", maintype="application",
                        subtype="octet-stream", filename="setup.exe")
    mail.add_attachment(b"%PDF-" + b"0" * settings.attachment_max_bytes, maintype="application",
                        subtype="pdf", filename="huge.pdf")
    await aiosmtplib.send(mail, hostname="127.0.0.1", port=inbox_port)

    async def opened() -> bool:
        found = await _tickets(sessions)
        return bool(found) and found[0].assignee_id is not None

    await wait_until(opened, seconds=30)
    ticket = (await _tickets(sessions))[0]
    agent = service_team.headers["agent1"]
    url = f"/api/tickets/{ticket.id}/attachments"
    kept = (await client.get(url, headers=agent)).json()
    assert [(a["filename"], a["content_type"], a["size"]) for a in kept] == [
        ("照片.png", "image/png", len(png))]
    got = await client.get(f"{url}/{kept[0]['id']}", headers=agent)
    assert got.status_code == 200 and got.content == png

    replied = await client.post(f"/api/tickets/{ticket.id}/comments", headers=agent,
                                json={"body": "请再拍一张背面"})
    assert replied.status_code == 201, replied.text
    answer = EmailMessage()
    answer["From"] = "wang@example.cn"
    answer["To"] = SUPPORT
    answer["Subject"] = f"Re: [#T-{ticket.id}] 屏幕有裂痕"
    answer["Message-ID"] = "<files-reply@example.cn>"
    answer.set_content("背面照片")
    answer.add_attachment(b"%PDF-1.4 receipt", maintype="application", subtype="pdf",
                          filename="发票.pdf")
    await aiosmtplib.send(answer, hostname="127.0.0.1", port=inbox_port)

    async def second() -> bool:
        return len((await client.get(url, headers=agent)).json()) == 2

    await wait_until(second, seconds=30)
    async with sessions() as session:
        comment = await session.scalar(select(TicketComment).where(
            TicketComment.message_id == "<files-reply@example.cn>"))
        files = (await session.scalars(select(TicketAttachment).where(
            TicketAttachment.ticket_id == ticket.id).order_by(TicketAttachment.id))).all()
    assert comment is not None and comment.from_customer
    assert [(f.filename, f.content_type, f.comment_id) for f in files] == [
        ("照片.png", "image/png", None), ("发票.pdf", "application/pdf", comment.id)]
    assert len(await _tickets(sessions)) == 1
