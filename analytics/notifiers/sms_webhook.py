"""A generic SMS gateway webhook: ``{"text", "alert_ids"}`` POSTed to the contact's address, any 2xx accepts.

The gateway decides the phone numbers (from its own configuration or the address's query, e.g.
``?to=138...``).  SMS is short: the text is the digest's title and one line per alert, plain.
"""

from __future__ import annotations

from typing import Any

from analytics.notifiers.base import Channel, event_json
from analytics.notifiers.webhook import accepted
from meterwatch.store import AlertPoint

MAX_SMS_CHARS = 500


def body(event: AlertPoint) -> dict[str, Any]:
    return {"text": event.message, "alert_ids": [event.id], "alert": event_json(event)}


def digest(heading: str, text: str, events: list[AlertPoint]) -> dict[str, Any]:
    plain = "\n".join(line.lstrip("#- ").replace("**", "") for line in text.splitlines())
    return {"text": plain[:MAX_SMS_CHARS], "alert_ids": [e.id for e in events]}


CHANNEL = Channel("sms_webhook", body, accepted, per_minute=30, digest=digest)
