"""Digests by mail (``analytics.smtp``), for ``email`` contacts: ``meterwatch.mail`` in a worker thread.

The thread never holds the event loop.  The password and the server's
answers are never logged as they are: only the SMTP code and the server's
text, which holds no secret of ours.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl

from analytics.notifiers.http import Outcome
from meterwatch.mail import deliver, message
from meterwatch.settings import SmtpSettings


async def send_mail(smtp: SmtpSettings, to: str, subject: str, text: str, message_id: str) -> Outcome:
    """One digest by mail; a refusal the server says is permanent (5xx) is not retried."""
    try:
        await asyncio.to_thread(deliver, smtp, message(smtp, to, subject, text, message_id=message_id))
    except smtplib.SMTPResponseException as exc:
        detail = f"SMTP {exc.smtp_code}: {exc.smtp_error.decode('utf-8', 'replace')[:200]}"
        return Outcome(False, detail, permanent=500 <= exc.smtp_code < 600, what="mail refused")
    except smtplib.SMTPRecipientsRefused as exc:
        return Outcome(False, f"recipient refused: {list(exc.recipients)}", permanent=True, what="mail refused")
    except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
        return Outcome(False, repr(exc)[:300], what="mail failed")
    return Outcome(True)
