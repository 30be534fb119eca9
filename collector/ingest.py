"""One message in, points and reject records out: the collector's logic without its I/O.

This is where a gateway is distrusted: the topic must parse, the device
must exist, belong to the institution named in the topic and be of a kind
the payload format fits, and every reading must pass its decoder.

``process`` is total: whatever goes wrong while handling one message
becomes a reject of that message (``internal_error``, the exception's class
in the detail), never an exception that would stop the collector, and a
message always comes out as data, duplicates or rejects.  What would be a
warning per message is counted in ``log_summary`` and logged per interval.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from collector import reasons
from collector.decoders import DECODERS, DecodeContext, Decoder, ItemReject
from collector.decoders.base import RawWeighing
from collector.deltas import DeviceHistory, seed
from collector.logsummary import LogSummary
from collector.topics import TopicError, parse_up_topic
from meterwatch.const import UNKNOWN
from meterwatch.registry import Device, Registry
from meterwatch.settings import CollectorSettings
from meterwatch.store import MeterValuePoint, ReadingPoint, RejectRecord, WeighingPoint

log = logging.getLogger(__name__)
RECENT_WEIGHINGS = 100_000  # identities remembered to spot a repeat (two days of the province's scales)


@dataclass
class Outcome:
    readings: list[ReadingPoint] = field(default_factory=list)
    weighings: list[WeighingPoint] = field(default_factory=list)
    values: list[MeterValuePoint] = field(default_factory=list)
    late: list[ReadingPoint] = field(default_factory=list)  # older than the window: neighbours from the store
    rejects: list[RejectRecord] = field(default_factory=list)
    duplicates: int = 0
    flags: Counter[str] = field(default_factory=Counter)
    unknown_cards: int = 0

    @property
    def verdict(self) -> str:
        """What became of the message: ``stored`` (some data kept), ``duplicate``, ``rejected``, or ``""``."""
        if self.readings or self.weighings or self.values or self.late:
            return "stored"
        return "duplicate" if self.duplicates else "rejected" if self.rejects else ""


class Ingestor:
    def __init__(self, registry: Registry, settings: CollectorSettings,
                 clock: Callable[[], float] = time.time,
                 decoders: dict[str, Decoder] | None = None) -> None:
        self.registry = registry
        self.settings = settings
        self.clock = clock
        self.decoders = decoders or DECODERS
        self.histories: dict[str, DeviceHistory] = {}
        self._last_reject_ns = 0
        self._weighed: dict[tuple[str, int, str], float] = {}  # (scale, ts, card) -> kg, oldest first
        self.log_summary = LogSummary(log)

    def _seeded(self, device: str, ts: int, register: float) -> None:
        known = self.registry.devices.get(device)
        self.histories[device] = seed(ts, register, self.settings.history_window, known.multiplier if known else 1.0)

    def seed(self, latest: dict[str, tuple[int, float]]) -> None:
        """Start each device from its newest stored reading, so a restart computes no spike."""
        for device, (ts, register) in latest.items():
            self._seeded(device, ts, register)

    def refresh(self, latest: dict[str, tuple[int, float]]) -> None:
        """Adopt the store's newest reading where it is newer than what this process saw.

        With a shared subscription another collector may have handled a
        device's previous upload; its reading, not ours, is the baseline.
        """
        for device, (ts, register) in latest.items():
            history = self.histories.get(device)
            if history is None or not history.ts or ts > history.ts[-1]:
                self._seeded(device, ts, register)

    def next_reject_ns(self) -> int:
        """A reject's time: unique and increasing, because InfluxDB keys a reject by its tags and time."""
        self._last_reject_ns = max(time.time_ns(), self._last_reject_ns + 1)
        return self._last_reject_ns

    def _reject(self, out: Outcome, topic: str, payload: bytes, reason: str, detail: str,
                institution: str = "", device: str = "") -> None:
        out.rejects.append(RejectRecord(self.next_reject_ns(), reason, topic, payload, detail, institution, device))
        self.log_summary.note("rejects", reason, topic)

    def _route(self, topic: str, payload: bytes, out: Outcome) -> tuple[Device, Decoder] | None:
        if len(payload) > self.settings.max_payload_bytes:
            self._reject(out, topic, payload[:1024], reasons.OVERSIZED,
                         f"{len(payload)} bytes, limit {self.settings.max_payload_bytes} (first 1 KiB kept)")
            return None
        try:
            up = parse_up_topic(topic)
        except TopicError as exc:
            self._reject(out, topic, payload, reasons.BAD_TOPIC, str(exc))
            return None
        decoder = self.decoders.get(up.suffix)
        if decoder is None:
            self._reject(out, topic, payload, reasons.UNKNOWN_TOPIC, f"no decoder for {up.suffix!r}",
                         up.institution, up.device)
            return None
        device = self.registry.devices.get(up.device)
        if device is None:
            self._reject(out, topic, payload, reasons.UNKNOWN_DEVICE, f"device {up.device!r} is not in the registry",
                         up.institution, up.device)
            return None
        if device.institution != up.institution:
            self._reject(out, topic, payload, reasons.INSTITUTION_MISMATCH,
                         f"device {device.id} belongs to {device.institution}, not {up.institution}",
                         up.institution, up.device)
            return None
        if device.kind not in decoder.kinds:
            self._reject(out, topic, payload, reasons.KIND_MISMATCH,
                         f"{up.suffix} payload for a {device.kind} device", up.institution, up.device)
            return None
        return device, decoder

    def process(self, topic: str, payload: bytes) -> Outcome:
        """The message's points and rejects; never raises (see the module's docstring)."""
        try:
            out = self._process(topic, payload)
        except Exception as exc:  # noqa: BLE001  (one message must never stop the collector)
            self.log_summary.error("internal errors while handling messages", exc, topic)
            return self._whole_reject(topic, payload, f"{type(exc).__name__} while handling the message: "
                                                      f"{_describe(exc)}")
        if not out.verdict:
            return self._whole_reject(topic, payload, "nothing came out of the message: a decoder broke its "
                                                      "contract")
        return out

    def _whole_reject(self, topic: str, payload: bytes, detail: str) -> Outcome:
        out = Outcome()
        try:
            up = parse_up_topic(topic)
            institution, device = up.institution, up.device
        except TopicError:
            institution = device = ""
        self._reject(out, topic, payload[:self.settings.max_payload_bytes], reasons.INTERNAL_ERROR, detail[:500],
                     institution, device)
        return out

    def _process(self, topic: str, payload: bytes) -> Outcome:
        out = Outcome()
        routed = self._route(topic, payload, out)
        if routed is None:
            return out
        device, decoder = routed
        ctx = DecodeContext(device, self.clock(), self.settings.future_tolerance_s, self.settings.max_batch_readings)
        decoded = decoder.decode(payload, ctx)
        for bad in decoded.rejects:
            self._item_reject(out, topic, payload, device, bad)
        if decoded.samples:
            self._readings(out, topic, device, decoded.samples)
        if decoded.weighings:
            self._weighings(out, topic, device, decoded.weighings)
        out.values += [MeterValuePoint(device.id, device.institution, v.name, v.ts, v.value) for v in decoded.values]
        return out

    def _item_reject(self, out: Outcome, topic: str, payload: bytes, device: Device, bad: ItemReject) -> None:
        self._reject(out, topic, payload if bad.payload is None else bad.payload, bad.reason, bad.detail,
                     device.institution, device.id)

    def _readings(self, out: Outcome, topic: str, device: Device, samples: list) -> None:
        inst = self.registry.institutions[device.institution]
        history = self.histories.get(device.id)
        if history is None:
            history = self.histories[device.id] = DeviceHistory(self.settings.history_window,
                                                                multiplier=device.multiplier)
        for sample in sorted(samples, key=lambda s: s.ts):
            register = sample.value * device.multiplier
            result = history.add(sample.ts, register)
            if result.status == "duplicate":
                out.duplicates += 1
                continue
            if result.status == "conflict":
                self._item_reject(out, topic, b"", device, ItemReject(
                    reasons.CONFLICTING_READING,
                    f"reading at {sample.ts} differs from the one already received for that second",
                    f'{{"ts": {sample.ts}, "value": {sample.value!r}}}'.encode()))
                continue
            if result.status == "late":
                p = result.points[0]
                out.late.append(ReadingPoint(device.id, device.institution, inst.city, inst.type, device.kind,
                                             p.ts, p.register))
                continue
            for p in result.points:
                if p.flag:
                    out.flags[p.flag] += 1
                    self.log_summary.note("register anomalies", p.flag, f"{device.id} at {p.ts}")
                out.readings.append(ReadingPoint(device.id, device.institution, inst.city, inst.type, device.kind,
                                                 p.ts, p.register, p.consumption, p.interval_s, p.flag))

    def _repeated(self, out: Outcome, topic: str, device: Device, w: RawWeighing) -> bool:
        """A weighing already received (scale, second and card, its identity in the store) is not stored twice.

        The same weight is a duplicate; another weight is refused, as a
        conflicting reading is, so what is counted stored is what the store holds.
        """
        key = (device.id, w.ts, w.card)
        seen = self._weighed.get(key)
        if seen is None:
            self._weighed[key] = w.weight_kg
            if len(self._weighed) > RECENT_WEIGHINGS:
                del self._weighed[next(iter(self._weighed))]
            return False
        if seen == w.weight_kg:
            out.duplicates += 1
        else:
            self._item_reject(out, topic, b"", device, ItemReject(
                reasons.CONFLICTING_READING,
                f"weighing at {w.ts} of card {w.card} differs from the one already received ({seen} kg)",
                json.dumps({"ts": w.ts, "card": w.card, "weight_kg": w.weight_kg}).encode()))
        return True

    def _weighings(self, out: Outcome, topic: str, device: Device, weighings: list[RawWeighing]) -> None:
        inst = self.registry.institutions[device.institution]
        for w in weighings:
            if self._repeated(out, topic, device, w):
                continue
            card = self.registry.cards.get(w.card)
            if card is None or card.institution != device.institution:
                out.unknown_cards += 1
                self.log_summary.note("weighings with unknown cards", device.institution, f"{device.id} card {w.card}")
                zone = category = cleaner = owner = UNKNOWN
            else:
                zone, category, cleaner, owner = card.zone, card.category, card.cleaner, card.owner_unit
            out.weighings.append(WeighingPoint(device.id, device.institution, inst.city, zone, category,
                                               w.ts, w.weight_kg, w.card, cleaner, owner))


def _describe(exc: BaseException) -> str:
    try:
        return str(exc)[:300]
    except Exception:  # noqa: BLE001  (str() itself can fail, e.g. on a huge int)
        return "(no description)"
