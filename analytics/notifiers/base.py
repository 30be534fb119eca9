"""The notifier role and the contract's JSON alert event."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from meterwatch.store import AlertPoint


class Notifier(Protocol):
    """Delivers events in order; raises on failure so the caller can retry or log.

    ``key`` names the notifier's outbox in the alert state: stable across
    restarts, one per destination, and free of secrets (it is saved).
    """

    key: str

    async def send(self, events: list[AlertPoint]) -> None: ...


@dataclass(frozen=True)
class Channel:
    """An HTTP channel, declared once in its module as ``CHANNEL`` (found by ``analytics.notifiers.channels``).

    ``body`` turns an alert event into the JSON request body; ``accepted`` tells from the HTTP status and
    the decoded answer whether the receiver took it; ``per_minute`` is the receiver's own rate limit,
    the default of ``[[analytics.notifiers]] per_minute``.
    """

    kind: str  # the `kind` of [[analytics.notifiers]]
    body: Callable[[AlertPoint], dict[str, Any]]
    accepted: Callable[[int, Any], bool]
    per_minute: float = 60.0
    digest: Callable[[str, str, list[AlertPoint]], dict[str, Any]] | None = None
    sign: Callable[[str, str, float], str] | None = None


def notifier_key(notifier: Notifier) -> str:
    return getattr(notifier, "key", None) or type(notifier).__name__


def rfc3339(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def event_json(event: AlertPoint) -> dict[str, Any]:
    return {"id": event.id, "rule": event.rule, "state": event.state, "severity": event.severity,
            "institution": event.institution, "device": event.device, "since": rfc3339(event.since),
            "updated": rfc3339(event.ts), "value": event.value, "unit": event.unit,
            "message": event.message, "message_en": event.message_en}


def event_bytes(event: AlertPoint) -> bytes:
    return json.dumps(event_json(event), ensure_ascii=False).encode("utf-8")
