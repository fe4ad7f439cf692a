"""Mail in: a mail to the support address opens a ticket, a reply to one becomes the
requester's comment. Replies are recognised by In-Reply-To / References (our outgoing
Message-IDs and the first mail's) or a `[#T-123]` tag in the subject."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import normalize
from domain.access import Actor, Role, Source
from domain.errors import Invalid
from domain.ticket import service
from domain.ticket.models import Channel, Ticket, TicketComment
from domain.ticket.rules import TicketPolicy
from domain.ticket.schemas import TicketCreate

TAG = re.compile(r"\[#T-(\d{1,10})\]")
QUOTE_START = re.compile(
    r"^(>|On .+wrote:$|在.+写道[:：]?$|-{2,}\s*Original Message|-{2,}\s*原始邮件)", re.IGNORECASE
)
MAIL_ACTOR = Actor(user_id=None, name="mail", role=Role.admin, source=Source.system)


def tag(ticket_id: int) -> str:
    return f"[#T-{ticket_id}]"


def references(message: EmailMessage) -> list[str]:
    """Message-IDs this mail answers, nearest first."""
    found: list[str] = []
    for header in ("In-Reply-To", "References"):
        found += re.findall(r"<[^<>\s]+>", str(message.get(header, "")))
    return list(dict.fromkeys(found))


def tagged_id(subject: str) -> int | None:
    match = TAG.search(subject)
    return int(match.group(1)) if match else None


def body_text(message: EmailMessage) -> str:
    """The new words of the mail: its plain text (or stripped HTML), without the quoted thread."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    text = part.get_content()
    if part.get_content_type() == "text/html":
        text = re.sub(r"<[^>]+>", " ", text)
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").split("\n"):
        if QUOTE_START.match(line.strip()):
            break
        lines.append(line.rstrip())
    return "\n".join(lines).strip()


def sender(message: EmailMessage) -> tuple[str, str]:
    """(display name, normalised address) of the From header; Invalid when it has none."""
    name, address = parseaddr(str(message.get("From", "")))
    if not address:
        raise Invalid("the mail has no sender", field="from")
    return name, normalize.email(address, field="from")


def addressed_to(message: EmailMessage, address: str) -> bool:
    wanted = address.strip().casefold()
    recipients = getaddresses(
        [str(v) for h in ("To", "Cc", "Delivered-To") for v in message.get_all(h, [])]
    )
    return any(a.strip().casefold() == wanted for _n, a in recipients)


async def thread_of(session: AsyncSession, message: EmailMessage) -> Ticket | None:
    """The ticket a mail answers, by its references, else by the subject's tag."""
    refs = references(message)
    if refs:
        ticket = await session.scalar(
            select(Ticket)
            .outerjoin(TicketComment, TicketComment.ticket_id == Ticket.id)
            .where(or_(Ticket.thread_id.in_(refs), TicketComment.message_id.in_(refs)))
            .limit(1)
        )
        if ticket is not None:
            return ticket
    ticket_id = tagged_id(str(message.get("Subject", "")))
    return await session.get(Ticket, ticket_id) if ticket_id else None


async def receive(
    session: AsyncSession, *, message: EmailMessage, policy: TicketPolicy, default_type: str
) -> tuple[Ticket, TicketComment | None, bool]:
    """(ticket, the requester's new comment or None, whether something new was stored).

    A reply from the ticket's requester becomes their comment; anything else opens a ticket
    (a reply from a stranger too: it must not land in somebody else's ticket)."""
    name, address = sender(message)
    message_id = str(message.get("Message-ID", "")).strip() or None
    subject = " ".join(str(message.get("Subject", "")).split())
    body = body_text(message)
    ticket = await thread_of(session, message)
    if ticket is not None and ticket.requester_email == address:
        comment, created = await service.add_customer_comment(
            session,
            actor=MAIL_ACTOR,
            ticket=ticket,
            body=body or subject or "—",
            author=name or address,
            message_id=message_id,
        )
        return ticket, comment, created
    data = TicketCreate(
        requester_name=name[:100] or None,
        requester_email=address,
        type=default_type,
        channel=Channel.email,
        subject=TAG.sub("", subject).strip()[:200] or "(no subject)",
        description=body[:20_000] or None,
    )
    ticket, created = await service.open_ticket(
        session,
        actor=MAIL_ACTOR,
        data=data,
        policy=policy,
        source_key=f"mail:{message_id}" if message_id else None,
        thread_id=message_id,
    )
    return ticket, None, created
