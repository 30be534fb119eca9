"""Alert lifecycle: one condition on one device is one alert, opened once, resolved once.

- open: the first evaluation that finds the condition publishes ``open``;
- update: while it holds, a changed figure is published at most every
  ``update_interval_s`` (operators asked not to be told every minute);
- resolve: only after the condition has been absent ``resolve_after``
  evaluations in a row (hysteresis against a flaky cellular link);
- acknowledged: an operator's ack is published once and mutes updates.

An alert's id is fixed when it opens: a hash of rule, device and the time
of its ``open`` event (strictly increasing per rule and device), kept in the
state.  It never derives from a rule's moving window, so it does not change
while the condition lasts, and re-running the same evaluation from the same
state gives the same ids.

State lives in a JSON file, written atomically (temporary file, fsync,
rename) *before* any event is written to the store or sent: a process
killed anywhere finds its alerts open on restart and re-opens nothing.  The
events themselves wait in the state's outbox, one queue per destination
(the store, each notifier), until that destination has taken them; a store
or notifier that fails gets them again at the next evaluation.

Contacts (``contacts.csv``) get digests: every event waits in
``undigested`` until the end of the next evaluation, which turns them into
one ``Message`` per contact (``analytics.digest``); messages wait in
``messages`` until the sender (``analytics.sender``) has delivered them,
outside the evaluation.  A delivered message's id is recorded in
``delivered`` in the same save that removes it, so a restart neither loses
a message nor sends a delivered one again.

Events of one rule on one device get strictly increasing times (at least a
second apart): InfluxDB identifies a point by its tags and time, so an
``open`` and a ``resolved`` stamped in the same second (a replay with
``--at``) would otherwise overwrite each other.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from analytics.rules.base import Finding
from meterwatch.store import AlertPoint

log = logging.getLogger(__name__)
STORE = "store"  # the store's outbox; each notifier's is its ``key``
MAX_OUTBOX = 10_000  # events kept per destination while it is down; beyond, the oldest go (logged)
MAX_DELIVERED = 5_000  # ids of delivered messages remembered (a restart never sends them again)


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


@dataclass
class Message:
    """One digest for one contact: the events of one evaluation (and acknowledgements since the last one)."""

    id: str
    contact: str
    created: int
    not_before: int  # quiet hours: not sent before this
    events: list[AlertPoint]
    attempts: int = 0
    next_try: int = 0  # after a failure: not retried before this (backoff)
    error: str = ""  # why the last attempt failed (redacted)

    @classmethod
    def of(cls, contact: str, created: int, not_before: int, events: list[AlertPoint]) -> Message:
        digest = hashlib.sha1(f"{contact}|{created}|{'|'.join(f'{e.id}:{e.state}:{e.ts}' for e in events)}"
                              .encode()).hexdigest()[:16]
        return cls(digest, contact, created, not_before, events)


def alert_id(rule: str, device: str, opened: int) -> str:
    """Stable for one condition on one device: ``opened`` is the time of the alert's ``open`` event."""
    return hashlib.sha1(f"{rule}|{device}|{opened}".encode()).hexdigest()[:16]


class AlertBook:
    def __init__(self, alerts: dict[str, OpenAlert] | None = None, *, update_interval_s: float = 3600,
                 resolve_after: int = 2, last_event: dict[str, int] | None = None,
                 outbox: dict[str, list[AlertPoint]] | None = None, path: Path | None = None) -> None:
        self.alerts: dict[str, OpenAlert] = alerts or {}  # key: rule|device
        self.last_event: dict[str, int] = last_event or {}  # key -> time of its latest event
        self.outbox: dict[str, list[AlertPoint]] = outbox or {}  # destination -> events it has not taken yet
        self.update_interval_s = update_interval_s
        self.resolve_after = resolve_after
        self.path = path  # where save() writes; None: an in-memory book (benchmarks, samples)
        self.messages: list[Message] = []  # digests for contacts, oldest first, until delivered
        self.undigested: list[AlertPoint] = []  # events for the next evaluation's digests
        self.delivered: list[str] = []  # ids of the latest delivered messages
        self.escalation: dict[str, list[int]] = {}  # alert id -> [level told so far, since when] (escalation on)
        self.storing = asyncio.Lock()  # one store write at a time (evaluations and acknowledgements)
        self.notifying = asyncio.Lock()  # one delivery to the notifiers at a time (sender and acknowledgements)
        self.wake = asyncio.Event()  # set when something was queued: the sender looks at once

    def post(self, events: list[AlertPoint], destinations: Iterable[str]) -> None:
        """Queue ``events`` for every destination; they leave the outbox once it has taken them."""
        if not events:
            return
        for dest in destinations:
            queue = self.outbox.setdefault(dest, [])
            queue += events
            if len(queue) > MAX_OUTBOX:
                log.error("alert outbox full: oldest events dropped", extra={
                    "destination": dest, "dropped": len(queue) - MAX_OUTBOX})
                del queue[:len(queue) - MAX_OUTBOX]

    def taken(self, dest: str, count: int) -> None:
        """The first ``count`` events queued for ``dest`` were delivered (later ones may have been posted since)."""
        rest = self.outbox.get(dest, [])[count:]
        if rest:
            self.outbox[dest] = rest
        else:
            self.outbox.pop(dest, None)

    def queue(self, messages: list[Message]) -> None:
        self.messages += [m for m in messages if m.id not in self.delivered]
        if messages:
            self.wake.set()

    def sent(self, message: Message) -> None:
        """``message`` was delivered: out of the queue, its id remembered (the caller saves)."""
        self.messages = [m for m in self.messages if m.id != message.id]
        self.delivered = (self.delivered + [message.id])[-MAX_DELIVERED:]

    def save(self) -> None:
        if self.path is not None:
            save_book(self, self.path)

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
                opened = max(now, self.last_event.get(key, now - 1) + 1)  # the open event's time, see _event
                current = self.alerts[key] = OpenAlert(alert_id(rule, f.device, opened), rule, f.institution,
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


class StateBusy(RuntimeError):
    """Another process holds the alert state file (a running ``meterwatch analyze``)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is in use by another meterwatch analyze process ({holder or 'unknown'})")
        self.holder = holder  # "scheduled <pid>" or "once <pid>", as the holder wrote it


@contextmanager
def hold_state(path: Path, mode: str) -> Iterator[None]:
    """Hold the state file for this process: an exclusive lock on ``<state>.lock``, released on exit
    (also when the process dies), with ``mode`` (scheduled, once, ack) and the pid written in it.  Two
    processes saving one state would each overwrite the other's changes: an acknowledgement saved by one
    is lost at the other's next save."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateBusy(path, os.pread(fd, 100, 0).decode(errors="replace").strip()) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{mode} {os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def load_book(path: Path, *, update_interval_s: float, resolve_after: int = 2) -> AlertBook:
    """The saved book (or an empty one); it saves itself to ``path`` from then on."""
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    alerts = {k: OpenAlert(**v) for k, v in data.get("alerts", {}).items()}
    outbox = {dest: [AlertPoint(**e) for e in events] for dest, events in data.get("outbox", {}).items()}
    book = AlertBook(alerts, update_interval_s=update_interval_s, resolve_after=resolve_after,
                     last_event=data.get("last_event", {}), outbox=outbox, path=path)
    book.delivered = data.get("delivered", [])
    book.escalation = data.get("escalation", {})
    book.undigested = [AlertPoint(**e) for e in data.get("undigested", [])]
    events = {k: AlertPoint(**e) for k, e in data.get("message_events", {}).items()}
    book.messages = [Message(**{**m, "events": [events[k] for k in m["events"]]})
                     for m in data.get("messages", []) if m["id"] not in book.delivered]
    return book


_POINT_FIELDS = tuple(f.name for f in fields(AlertPoint))


def _point(e: AlertPoint) -> dict[str, object]:
    """``asdict`` without its deep copies: the state is saved after every delivered message."""
    return {name: getattr(e, name) for name in _POINT_FIELDS}


def _event_key(e: AlertPoint) -> str:
    return f"{e.id}|{e.state}|{e.ts}"


def _messages(messages: list[Message]) -> dict[str, object]:
    """The messages with their events by key, each event once: the province's and a city's digests share them."""
    events = {_event_key(e): _point(e) for m in messages for e in m.events}
    return {"message_events": events,
            "messages": [{**{f.name: getattr(m, f.name) for f in fields(m) if f.name != "events"},
                          "events": [_event_key(e) for e in m.events]} for m in messages]}


def save_book(book: AlertBook, path: Path) -> None:
    """Atomically: a crash leaves either the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    data = {"alerts": {k: asdict(v) for k, v in book.alerts.items()}, "last_event": book.last_event,
            "outbox": {dest: [_point(e) for e in events] for dest, events in book.outbox.items()},
            "undigested": [_point(e) for e in book.undigested], **_messages(book.messages),
            "delivered": book.delivered, "escalation": book.escalation}
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps(data, ensure_ascii=False, separators=(",", ":")))  # compact: saved after every send
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)
