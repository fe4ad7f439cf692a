"""The support mailbox: an inbound SMTP endpoint (`dossier mail-in`) that turns mail to the
support address into tickets, and replies into the requester's comments on their ticket.

It runs its server on the caller's event loop, so the database engine and the Temporal client
it uses live on the same loop. A mail is accepted (250) only once it is stored and its
workflow told; a failure answers 451 so the sending server delivers it again, which is safe:
a redelivered Message-ID is the same ticket or comment.
"""

from __future__ import annotations

import asyncio
import email
import logging
import signal
from email import policy as mail_policy
from email.message import EmailMessage

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client

from api.ticket import start_workflow
from domain import policy
from domain.db import create_engine, session_factory, transaction
from domain.errors import DomainError, Invalid
from domain.policy import PolicyKind
from domain.settings import Settings
from domain.ticket import attachment
from domain.ticket import mail as ticket_mail
from domain.ticket.models import Ticket, TicketComment
from domain.ticket.rules import TicketPolicy
from domain.ticket.schemas import CustomerReplied
from workflows.client import connect
from workflows.ticket import TicketWorkflow

log = logging.getLogger("dossier.mail_in")
MAX_MAIL_BYTES = 10_000_000


async def receive(
    sessions: async_sessionmaker[AsyncSession],
    temporal: Client,
    settings: Settings,
    message: EmailMessage,
) -> tuple[int, int | None]:
    """Store one mail: (ticket id, comment id or None). A new ticket's workflow is started
    before the commit; a reply is signalled to the ticket's workflow after it."""
    async with transaction(sessions) as session:
        _v, rules = await policy.current(session, kind=PolicyKind.ticket)
        assert isinstance(rules, TicketPolicy)
        ticket, comment, created = await ticket_mail.receive(
            session, message=message, policy=rules, default_type=settings.ticket_default_type
        )
        if created:
            await _attachments(session, settings, ticket, message, comment)
        if created and comment is None:
            await start_workflow(temporal, settings, ticket.id)
    if comment is not None and created:
        handle = temporal.get_workflow_handle(settings.workflow_id("ticket", ticket.id))
        await handle.signal(TicketWorkflow.customer_replied, CustomerReplied(comment_id=comment.id))
    return ticket.id, comment.id if comment else None


async def _attachments(
    session: AsyncSession,
    settings: Settings,
    ticket: Ticket,
    message: EmailMessage,
    comment: TicketComment | None,
) -> None:
    """Keep the files the checks accept; a refused one is logged, the mail still counts."""
    for part in message.iter_attachments():
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        try:
            await attachment.store(
                session,
                actor=ticket_mail.MAIL_ACTOR,
                ticket=ticket,
                root=settings.var_dir / "attachments",
                filename=part.get_filename(),
                data=data,
                max_bytes=settings.attachment_max_bytes,
                allowed=settings.attachment_types,
                comment_id=comment.id if comment else None,
            )
        except Invalid as refused:
            log.info(
                "ticket %s: attachment %r refused: %s",
                ticket.id,
                part.get_filename(),
                refused.message,
            )


class SupportInbox:
    """aiosmtpd handler: only the support address is a mailbox here."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], temporal: Client, settings: Settings
    ) -> None:
        self.sessions = sessions
        self.temporal = temporal
        self.settings = settings

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        options: list[str],
    ) -> str:
        if address.strip().casefold() != self.settings.support_address.strip().casefold():
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = email.message_from_bytes(raw, policy=mail_policy.default)
        assert isinstance(message, EmailMessage)
        try:
            await receive(self.sessions, self.temporal, self.settings, message)
        except DomainError as refused:
            return f"550 5.6.0 {refused.message}"
        except Exception:
            log.exception("mail %s not stored", message.get("Message-ID"))
            return "451 4.3.0 not stored, try again later"
        return "250 OK"


async def start_server(inbox: SupportInbox, host: str, port: int) -> asyncio.Server:
    """Listen on host:port in the running loop; port 0 picks a free one (see sockets)."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(inbox, data_size_limit=MAX_MAIL_BYTES, enable_SMTPUTF8=True),
        host=host,
        port=port,
    )


async def serve(settings: Settings) -> None:
    """`dossier mail-in`: run until SIGINT/SIGTERM."""
    engine = create_engine(settings.database_url)
    temporal = await connect(settings)
    inbox = SupportInbox(session_factory(engine), temporal, settings)
    server = await start_server(inbox, settings.mail_in_host, settings.mail_in_port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info(
        "support mailbox %s on %s:%s",
        settings.support_address,
        settings.mail_in_host,
        settings.mail_in_port,
    )
    async with server:
        await stop.wait()
    await engine.dispose()
