"""Generic webhook: the contract's alert event as JSON; any 2xx accepts it."""

from __future__ import annotations

from typing import Any

from analytics.notifiers.base import Channel, event_json
from meterwatch.store import AlertPoint


def body(event: AlertPoint) -> dict[str, Any]:
    return event_json(event)


def accepted(status: int, answer: Any) -> bool:
    return 200 <= status < 300


CHANNEL = Channel("webhook", body, accepted, per_minute=60)
