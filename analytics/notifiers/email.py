"""Digests by mail: SMTP with STARTTLS and login (``analytics.smtp``), for ``email`` contacts.

Standard-library ``smtplib`` in a worker thread rather than aiosmtplib: no
new runtime dependency for one message per contact per evaluation, and
smtplib's STARTTLS and AUTH are the long-tested ones.  The thread never
holds the event loop; each conversation is bounded by ``smtp.timeout_s``.
The password and the server's answers are never logged as they are: only
the SMTP code and the server's text, which holds no secret of ours.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from analytics.notifiers.http import Outcome
from meterwatch.settings import SmtpSettings


def compose(smtp: SmtpSettings, to: str, subject: str, text: str, message_id: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = smtp.sender, to, subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(idstring=message_id, domain="meterwatch")
    mail.set_content(text)  # markdown reads as plain text; UTF-8, so the Chinese stays Chinese
    return mail


def _send(smtp: SmtpSettings, mail: EmailMessage) -> None:
    assert smtp.host is not None  # checked at start (contacts with email need it)
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
        if smtp.starttls:
            client.starttls(context=ssl.create_default_context(cafile=smtp.ca_file))
        if smtp.user:
            client.login(smtp.user, smtp.password.get_secret_value() if smtp.password else "")
        client.send_message(mail)


async def send_mail(smtp: SmtpSettings, to: str, subject: str, text: str, message_id: str) -> Outcome:
    """One digest by mail; a refusal the server says is permanent (5xx) is not retried."""
    try:
        await asyncio.to_thread(_send, smtp, compose(smtp, to, subject, text, message_id))
    except smtplib.SMTPResponseException as exc:
        detail = f"SMTP {exc.smtp_code}: {exc.smtp_error.decode('utf-8', 'replace')[:200]}"
        return Outcome(False, detail, permanent=500 <= exc.smtp_code < 600, what="mail refused")
    except smtplib.SMTPRecipientsRefused as exc:
        return Outcome(False, f"recipient refused: {list(exc.recipients)}", permanent=True, what="mail refused")
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        return Outcome(False, repr(exc)[:300], what="mail failed")
    return Outcome(True)
