"""Mail over SMTP (STARTTLS, then login): the one home of a conversation with the mail server.

Used by the digests of ``email`` contacts (``analytics.smtp``) and by the
scheduled reports (``reports.smtp``), both configured with ``SmtpSettings``.
Standard-library ``smtplib``: no new runtime dependency for a few messages
an evaluation or a month, and its STARTTLS and AUTH are the long-tested
ones.  Callers in an event loop run ``deliver`` in a thread; each
conversation is bounded by ``smtp.timeout_s``.  The password is never
logged.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from meterwatch.settings import SmtpSettings

MIME = {"xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        "pdf": ("application", "pdf"), "json": ("application", "json")}


def message(smtp: SmtpSettings, to: str | list[str], subject: str, text: str, *,
            attachments: Iterable[Path] = (), message_id: str | None = None) -> EmailMessage:
    """A UTF-8 plain-text message (Chinese stays Chinese), with files attached by their suffix's type."""
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = smtp.sender, to if isinstance(to, str) else ", ".join(to), subject
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(idstring=message_id, domain="meterwatch") if message_id else make_msgid(
        domain="meterwatch")
    mail.set_content(text)
    for path in attachments:
        maintype, subtype = MIME.get(path.suffix.lstrip("."), ("application", "octet-stream"))
        mail.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return mail


def deliver(smtp: SmtpSettings, mail: EmailMessage) -> None:
    """One SMTP conversation: STARTTLS (verifying the server), login when configured, send."""
    if smtp.host is None:
        raise ValueError("no SMTP server configured (smtp.host)")
    with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s) as client:
        if smtp.starttls:
            client.starttls(context=ssl.create_default_context(cafile=str(smtp.ca_file) if smtp.ca_file else None))
        if smtp.user:
            client.login(smtp.user, smtp.password.get_secret_value() if smtp.password else "")
        client.send_message(mail)
