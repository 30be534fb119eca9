"""Dead letters back in: list the stored rejects, and feed their payloads through the collector's stages again.

A reject keeps its topic, its payload (the refused item of a batch, or the
whole message) and its time.  ``replay`` runs each payload through
``Ingestor`` (route, decode, derive, then ``collector.late``) with the
clock set to the time it first arrived, so a binary frame is stamped as it
was then; the devices' history is the store's.  What passes now (a device
added to the registry since) is stored; what still fails is counted by
reason and left where it is.  A reading already stored is a duplicate, so
replaying twice stores once.  An item of an HTTP push (topic
``push/{platform}/{platform device id}``) is replayed as its device's
message once ``devices.csv`` maps that id.  Rejects without an MQTT or push
item topic are not replayed: ``store_refused`` records, refused import rows
(import the corrected file) and whole refused push requests.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from collector.ingest import Ingestor
from collector.late import place_late
from collector.message import Message
from collector.push import suffix_for
from collector.topics import TopicError, parse_up_topic
from meterwatch.const import UP_PREFIX
from meterwatch.localtime import CHINA, DAY
from meterwatch.registry import Registry
from meterwatch.settings import Settings
from meterwatch.store import Batch, RejectRecord, Store

BASELINE_DAYS = 60  # history from the store: the newest reading since this long before the oldest reject
SHORT_PAYLOAD = 60


async def stored_rejects(store: Store, reason: str | None = None, since: int | None = None) -> list[RejectRecord]:
    """Rejects, oldest first, of one reason and since a time (Unix seconds) if given."""
    equals = {"reason": reason} if reason else {}
    return await store.fetch(RejectRecord, start=since, **equals)


def reject_line(r: RejectRecord) -> str:
    """One reject as a line: local time, reason, topic, device, detail and the start of its payload."""
    when = datetime.fromtimestamp(r.ts_ns / 1e9, CHINA).isoformat(timespec="seconds")
    payload = r.payload[:SHORT_PAYLOAD].decode("utf-8", "backslashreplace")
    more = "..." if len(r.payload) > SHORT_PAYLOAD else ""
    return f"{when}\t{r.reason}\t{r.topic or '-'}\t{r.device or '-'}\t{r.detail[:120]}\t{payload}{more}"


@dataclass
class ReplayReport:
    replayed: int = 0
    stored: int = 0  # points of the replayed payloads now stored (readings, weighings, values)
    recomputed: int = 0  # stored readings after a replayed one, whose consumption was recomputed
    duplicates: int = 0
    still: Counter[str] = field(default_factory=Counter)  # rejected again, by reason
    skipped: int = 0  # rejects without a topic (store_refused): nothing to replay

    def summary(self, dry_run: bool) -> str:
        verb = "would store" if dry_run else "stored"
        still = ", ".join(f"{n} {reason}" for reason, n in self.still.most_common()) or "none"
        return (f"{self.replayed} rejects replayed: {verb} {self.stored} points, {self.duplicates} already stored, "
                f"{self.recomputed} following readings recomputed; "
                f"still rejected: {still}; {self.skipped} not replayable (no MQTT or push item topic)")


def _push_item(topic: str) -> str | None:
    """The platform device id of a pushed item's topic (``push/{platform}/{id}``), else None."""
    parts = topic.split("/", 2)
    return parts[2] if len(parts) == 3 and parts[0] == "push" and parts[2] else None


def replayable(r: RejectRecord) -> bool:
    """An MQTT message (its topic) or an item of an HTTP push (``push/{platform}/{platform device id}``);
    not a whole refused push request, an item without a device id, a refused import row or a record the
    store refused (no topic)."""
    return r.topic.startswith(UP_PREFIX + "/") or _push_item(r.topic) is not None


def up_topic(r: RejectRecord, registry: Registry) -> str:
    """The topic to replay ``r`` on: its own, or for a pushed item the one its platform device id maps to
    now ("" while that id is still unknown)."""
    platform_id = _push_item(r.topic)
    if platform_id is None:
        return r.topic
    device = registry.by_platform_id.get(platform_id)
    if device is None:
        return ""
    form = "json" if r.payload.lstrip()[:1] in (b"{", b"[") else "frame"
    return f"{UP_PREFIX}/{device.institution}/{device.id}/{suffix_for(device.kind, form)}"


def _institution(topic: str) -> str | None:
    try:
        return parse_up_topic(topic).institution
    except TopicError:
        return None  # a bad_topic reject: replayed to be refused again, no history needed


async def replay(rejects: list[RejectRecord], registry: Registry, settings: Settings, store: Store,
                 dry_run: bool = False) -> ReplayReport:
    report = ReplayReport()
    now = [0.0]
    ingestor = Ingestor(registry, settings.collector, clock=lambda: now[0])
    chosen = sorted((r for r in rejects if replayable(r)), key=lambda r: r.ts_ns)
    report.skipped = len(rejects) - len(chosen)
    if not chosen:
        return report
    topics = [up_topic(r, registry) for r in chosen]
    # every device of the topics' institutions: a frame a gateway forwarded may be any of them
    institutions = {_institution(t) for t in topics} - {None}
    devices = sorted({r.device for r in chosen if r.device}
                     | {d.id for d in registry.devices.values() if d.institution in institutions})
    since = chosen[0].ts_ns // 1_000_000_000 - BASELINE_DAYS * DAY
    ingestor.seed(await store.latest_readings(since, devices))
    for r, topic in zip(chosen, topics, strict=True):
        if not topic:  # a pushed item whose platform device id is still not in devices.csv
            report.replayed += 1
            report.still[r.reason] += 1
            continue
        now[0] = r.ts_ns / 1e9
        message = Message(topic, r.payload, arrived=now[0])
        ingestor.process([message])
        await place_late(ingestor, store, [message])
        out = message.out
        report.replayed += 1
        report.duplicates += message.duplicates
        report.still.update(bad.reason for bad in out.rejects)
        kept = Batch(readings=out.readings, weighings=out.weighings, values=out.values)
        own = _own_readings(message)
        following = sum((p.device, p.ts) not in own for p in out.readings)
        report.stored += len(kept) - following
        report.recomputed += following
        if kept and not dry_run:
            await store.write(kept)  # now: the next reject's late reading is placed against this one
    return report


def _own_readings(message: Message) -> set[tuple[str, int]]:
    """(device, ts) of the readings the message itself carried, its gateway's forwarded frames included;
    any other reading that came out is a stored one after them, recomputed."""
    decoded = message.decoded
    if decoded is None or message.device is None:
        return set()
    parts = [(message.device, decoded), *decoded.forwarded.items()]
    return {(device.id, s.ts) for device, part in parts for s in part.all_samples()}
