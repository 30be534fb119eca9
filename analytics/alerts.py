"""Alert lifecycle: one condition on one device is one alert, opened once, resolved once.

- open: the first evaluation that finds the condition publishes ``open``;
- update: while it holds, a changed figure is published at most every
  ``update_interval_s`` (operators asked not to be told every minute);
- resolve: only after the condition has been absent ``resolve_after``
  evaluations in a row (hysteresis against a flaky cellular link);
- acknowledged: an operator's ack is published once and mutes updates.

State lives in a JSON file written atomically after every evaluation, so
restarting analytics neither re-opens nor forgets an alert.

Events of one rule on one device get strictly increasing times (at least a
second apart): InfluxDB identifies a point by its tags and time, so an
``open`` and a ``resolved`` stamped in the same second (a replay with
``--at``) would otherwise overwrite each other.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from analytics.findings import Finding
from meterwatch.store import AlertPoint


@dataclass
class OpenAlert:
    id: str
    rule: str
    institution: str
    device: str
    since: int
    updated: int
    value: float
    unit: str
    severity: str
    message: str
    message_en: str
    acknowledged: bool = False
    misses: int = 0

    def event(self, state: str, ts: int) -> AlertPoint:
        return AlertPoint(self.id, ts, state, self.institution, self.device, self.rule, self.severity,
                          self.message, self.message_en, self.value, self.unit, self.since, ts - self.since)


def alert_id(rule: str, device: str, since: int) -> str:
    return hashlib.sha1(f"{rule}|{device}|{since}".encode()).hexdigest()[:16]


class AlertBook:
    def __init__(self, alerts: dict[str, OpenAlert] | None = None, *, update_interval_s: float = 3600,
                 resolve_after: int = 2, last_event: dict[str, int] | None = None) -> None:
        self.alerts: dict[str, OpenAlert] = alerts or {}  # key: rule|device
        self.last_event: dict[str, int] = last_event or {}  # key -> time of its latest event
        self.update_interval_s = update_interval_s
        self.resolve_after = resolve_after

    def _event(self, key: str, alert: OpenAlert, state: str, now: int) -> AlertPoint:
        ts = max(now, self.last_event.get(key, now - 1) + 1)
        self.last_event[key] = ts
        return alert.event(state, ts)

    def apply(self, rule: str, findings: Iterable[Finding], scope: set[str], now: int) -> list[AlertPoint]:
        """Events for one rule's evaluation; ``scope`` is every device the rule looked at."""
        events: list[AlertPoint] = []
        seen: set[str] = set()
        for f in findings:
            key = f"{rule}|{f.device}"
            seen.add(key)
            current = self.alerts.get(key)
            if current is None:
                current = self.alerts[key] = OpenAlert(alert_id(rule, f.device, f.since), rule, f.institution,
                                                       f.device, f.since, now, f.value, f.unit, f.severity,
                                                       f.message, f.message_en)
                events.append(self._event(key, current, "open", now))
                continue
            current.misses = 0
            changed = (f.value, f.severity, f.message) != (current.value, current.severity, current.message)
            current.value, current.severity, current.message, current.message_en = (
                f.value, f.severity, f.message, f.message_en)
            if changed and not current.acknowledged and now - current.updated >= self.update_interval_s:
                current.updated = now
                events.append(self._event(key, current, "update", now))
        for key, current in list(self.alerts.items()):
            if current.rule != rule or key in seen or current.device not in scope:
                continue
            current.misses += 1
            if current.misses >= self.resolve_after:
                del self.alerts[key]
                events.append(self._event(key, current, "resolved", now))
        return events

    def acknowledge(self, alert_id_: str, now: int) -> AlertPoint | None:
        for key, current in self.alerts.items():
            if current.id == alert_id_ and not current.acknowledged:
                current.acknowledged = True
                return self._event(key, current, "acknowledged", now)
        return None


def load_book(path: Path, *, update_interval_s: float, resolve_after: int = 2) -> AlertBook:
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    alerts = {k: OpenAlert(**v) for k, v in data.get("alerts", {}).items()}
    return AlertBook(alerts, update_interval_s=update_interval_s, resolve_after=resolve_after,
                     last_event=data.get("last_event", {}))


def save_book(book: AlertBook, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    data = {"alerts": {k: asdict(v) for k, v in book.alerts.items()}, "last_event": book.last_event}
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
