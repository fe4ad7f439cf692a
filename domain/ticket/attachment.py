"""Attachments: sniff what the bytes are (never trust the client's content type), keep them on
disk under var/attachments, named by their hash so the stored name is never the client's."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from domain import audit
from domain.access import Actor
from domain.errors import Invalid
from domain.ticket.models import Ticket, TicketAttachment

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"PK\x03\x04", "application/zip"),
)


def sniff(data: bytes) -> str | None:
    """The content type the bytes show, or None; text must be valid UTF-8 without NULs."""
    for magic, kind in SIGNATURES:
        if data.startswith(magic):
            return kind
    if b"\x00" in data:
        return None
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return "text/plain"


def safe_name(filename: str | None) -> str:
    """A display name without directories or control characters."""
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "_", (filename or "").rsplit("/", 1)[-1]).strip()
    return name[:200] or "attachment"


async def store(
    session: AsyncSession,
    *,
    actor: Actor,
    ticket: Ticket,
    root: Path,
    filename: str | None,
    data: bytes,
    max_bytes: int,
    allowed: tuple[str, ...],
    comment_id: int | None = None,
) -> TicketAttachment:
    """Check size and type, write the file, and record it (audited) in the caller's transaction."""
    if not data:
        raise Invalid("the file is empty", field="file")
    if len(data) > max_bytes:
        raise Invalid(f"the file is larger than {max_bytes} bytes", field="file")
    kind = sniff(data)
    if kind is None or kind not in allowed:
        raise Invalid(
            f"this kind of file is not accepted ({kind or 'unknown'}); allowed: "
            + ", ".join(allowed),
            field="file",
        )
    digest = hashlib.sha256(data).hexdigest()
    relative = Path(str(ticket.id)) / digest
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    row = TicketAttachment(
        ticket_id=ticket.id,
        comment_id=comment_id,
        filename=safe_name(filename),
        content_type=kind,
        size=len(data),
        sha256=digest,
        path=str(relative),
        uploaded_by=actor.user_id,
    )
    session.add(row)
    await session.flush()
    audit.record(
        session,
        actor=actor,
        action="attach",
        entity="ticket",
        entity_id=ticket.id,
        note={"attachment_id": row.id, "filename": row.filename, "content_type": kind},
    )
    return row
