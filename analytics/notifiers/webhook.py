"""Generic webhook: the contract's alert event as JSON; any 2xx accepts it."""

from __future__ import annotations

from typing import Any

from analytics.notifiers.base import Channel, event_json
from meterwatch.store import AlertPoint


def body(event: AlertPoint) -> dict[str, Any]:
    return event_json(event)


def accepted(status: int, answer: Any) -> bool:
    return 200 <= status < 300


def digest(heading: str, text: str, events: list[AlertPoint]) -> dict[str, Any]:
    """The digest's title and markdown text, and its events as the contract's JSON alert events."""
    return {"title": heading, "text": text, "alerts": [event_json(e) for e in events]}


CHANNEL = Channel("webhook", body, accepted, per_minute=60, digest=digest)
