"""Outgoing mail over SMTP: one message, one relay, and a clear line between "retry" and "give up".

Plain functions so every lifecycle (notifications, approval links, digests) sends the same way.
"""

from __future__ import annotations

import hashlib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

import aiosmtplib

from domain.notification import Rejected
from domain.settings import Settings


def message_id(settings: Settings, key: str) -> str:
    """A Message-ID fixed by the idempotency key: a resend after a crash is the same message,
    so mail servers and clients that dedupe by Message-ID show it once."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    domain = parseaddr(settings.mail_from)[1].rpartition("@")[2] or "localhost"
    return f"<{digest}@{domain}>"


def compose(
    settings: Settings,
    *,
    key: str,
    to_name: str,
    to_address: str,
    subject: str,
    text: str,
    html: str | None = None,
) -> EmailMessage:
    """A text (and HTML) mail from `mail_from`, marked as automatic so nobody's autoresponder
    answers it."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = Address(display_name=to_name, addr_spec=to_address)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(settings, key)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


async def send_mail(settings: Settings, message: EmailMessage) -> None:
    """Hand the message to the configured relay.

    A 5xx refusal of the sender, a recipient or the data raises `Rejected` (the same message
    would be refused again). Everything else — no connection, timeouts, 4xx "try later",
    authentication while an admin fixes the password — propagates, so the caller retries.
    """
    if settings.smtp_host is None:
        raise ValueError("SMTP is not configured (DOSSIER_SMTP_HOST)")
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=password,
            start_tls=settings.smtp_starttls,
            use_tls=settings.smtp_use_tls,
            timeout=settings.smtp_timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        refusals = [r for r in exc.recipients if r.code >= 500]
        if len(refusals) == len(exc.recipients):
            raise Rejected("; ".join(_describe(r) for r in refusals)) from exc
        raise
    except (
        aiosmtplib.SMTPRecipientRefused,
        aiosmtplib.SMTPSenderRefused,
        aiosmtplib.SMTPDataError,
    ) as exc:
        if exc.code >= 500:
            raise Rejected(_describe(exc)) from exc
        raise


def _describe(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"SMTP {exc.code} {exc.message}"
