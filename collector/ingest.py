"""The pure stages of the collector: messages in, points and reject records out, no I/O.

Each stage takes a list of ``Message`` and fills in its part (see
``collector.message``); the service runs them in this order:

- ``route``: size, topic (parsed once), decoder of its suffix, and the
  registry: the device must exist, belong to the institution named in the
  topic and be of a kind the payload format fits.  This is where a gateway
  is distrusted.
- ``decode``: the decoder turns the payload into samples, weighings and
  values; every item is checked on its own (a bad one is rejected alone).
- ``derive``: consumption and register flags from the device's history,
  duplicates (a reading, a weighing or a redelivered frame already
  received) and conflicts; readings older than the history are left in
  ``late`` for ``collector.late`` to place between their stored neighbours.
  A batch decoded as columns that is newer than the history is appended at
  once (``DeviceHistory.extend``); otherwise it goes reading by reading.
  The plain next uploads of a whole flush (one message per device, nothing
  but columns) are appended together first (``deltas.extend_all``), then
  every other message in arrival order, so each device's messages are
  still taken in the order they came.

The stages are total: whatever goes wrong with one message becomes a reject
of that message (``internal_error``, the exception's class in the detail),
never an exception that would stop the collector, and a message always
comes out as data, duplicates or rejects.  What would be a warning per
message is counted in ``log_summary`` and logged per interval.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import numpy as np

from collector import reasons
from collector.decoders import DECODERS, DecodeContext, Decoded, Decoder, RawWeighing, Sample, SampleColumns
from collector.deltas import DeviceHistory, Interval, extend_all, seed
from collector.logsummary import LogSummary
from collector.message import Message
from collector.topics import TopicError, parse_up_topic
from meterwatch.const import UNKNOWN
from meterwatch.registry import Device, Registry
from meterwatch.settings import CollectorSettings
from meterwatch.store import MeterValuePoint, ReadingColumns, ReadingPoint, RejectRecord, WeighingPoint

log = logging.getLogger(__name__)
RECENT_WEIGHINGS = 100_000  # identities remembered to spot a repeat (two days of the province's scales)


class Ingestor:
    def __init__(self, registry: Registry, settings: CollectorSettings,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 decoders: dict[str, Decoder] | None = None, columns: bool = False) -> None:
        self.registry = registry
        self.columns = columns  # readings appended at once are kept as ``ReadingColumns``, not one point each
        self.settings = settings
        self.clock = clock
        self.decoders = decoders or DECODERS
        self.histories: dict[str, DeviceHistory] = {}
        self._last_reject_ns = 0
        self._weighed: dict[tuple[str, int, str], float] = {}  # (scale, ts, card) -> kg, oldest first
        self.log_summary = LogSummary(log, monotonic)

    def _seeded(self, device: str, ts: int, register: float) -> None:
        known = self.registry.devices.get(device)
        self.histories[device] = seed(ts, register, self.settings.history_window, known.multiplier if known else 1.0)

    def seed(self, latest: dict[str, tuple[int, float]]) -> None:
        """Start each device from its newest stored reading, so a restart computes no spike."""
        for device, (ts, register) in latest.items():
            self._seeded(device, ts, register)

    def next_reject_ns(self) -> int:
        """A reject's time: unique and increasing, because InfluxDB keys a reject by its tags and time."""
        self._last_reject_ns = max(int(self.clock() * 1e9), self._last_reject_ns + 1)
        return self._last_reject_ns

    def reject(self, m: Message, reason: str, detail: str, payload: bytes | None = None) -> None:
        """Keep a reject of ``m`` (its whole payload unless ``payload`` names the refused part)."""
        up = m.up
        m.out.rejects.append(RejectRecord(self.next_reject_ns(), reason, m.topic,
                                          m.payload if payload is None else payload, detail,
                                          up.institution if up else "", up.device if up else ""))
        self.log_summary.note("rejects", reason, m.topic)

    def _refuse(self, m: Message, reason: str, detail: str, payload: bytes | None = None) -> None:
        self.reject(m, reason, detail, payload)
        m.settled = True

    # -- the stages ---------------------------------------------------------------------------------

    def process(self, messages: list[Message]) -> list[Message]:
        """``route``, ``decode`` and ``derive``: everything but placing late readings, which needs the store."""
        self.route(messages)
        self.decode(messages)
        self.derive(messages)
        return messages

    def route(self, messages: list[Message]) -> None:
        self._each(self._route, messages)

    def decode(self, messages: list[Message]) -> None:
        self._each(self._decode, messages)

    def derive(self, messages: list[Message]) -> None:
        """Points from the history; then a message that came out as nothing is a broken contract."""
        done = self._derive_at_once(messages)
        self._each(self._derive, [m for m in messages if id(m) not in done] if done else messages)
        for m in messages:
            if not m.verdict:
                self._internal_error(m, "nothing came out of the message: a decoder broke its contract")

    def _each(self, stage: Callable[[Message], None], messages: list[Message]) -> None:
        for m in messages:
            if m.settled:
                continue
            try:
                stage(m)
            except Exception as exc:  # noqa: BLE001  (one message must never stop the collector)
                self.log_summary.error("internal errors while handling messages", exc, m.topic)
                self._internal_error(m, f"{type(exc).__name__} while handling the message: {_describe(exc)}")

    def _internal_error(self, m: Message, detail: str) -> None:
        """The message rejected whole, whatever the stages had made of it."""
        m.start_over()
        self._refuse(m, reasons.INTERNAL_ERROR, detail[:500], m.payload[:self.settings.max_payload_bytes])

    def _route(self, m: Message) -> None:
        if len(m.payload) > self.settings.max_payload_bytes:
            return self._refuse(m, reasons.OVERSIZED, f"{len(m.payload)} bytes, limit "
                                f"{self.settings.max_payload_bytes} (first 1 KiB kept)", m.payload[:1024])
        try:
            up = m.up = parse_up_topic(m.topic)
        except TopicError as exc:
            return self._refuse(m, reasons.BAD_TOPIC, str(exc))
        decoder = self.decoders.get(up.suffix)
        if decoder is None:
            return self._refuse(m, reasons.UNKNOWN_TOPIC, f"no decoder for {up.suffix!r}")
        device = self.registry.devices.get(up.device)
        if device is None:
            return self._refuse(m, reasons.UNKNOWN_DEVICE, f"device {up.device!r} is not in the registry")
        if device.institution != up.institution:
            return self._refuse(m, reasons.INSTITUTION_MISMATCH,
                                f"device {device.id} belongs to {device.institution}, not {up.institution}")
        if device.kind not in decoder.kinds:
            return self._refuse(m, reasons.KIND_MISMATCH, f"{up.suffix} payload for a {device.kind} device")
        m.device, m.decoder = device, decoder
        return None

    def _decode(self, m: Message) -> None:
        assert m.device is not None and m.decoder is not None  # routed
        ctx = DecodeContext(m.device, self.clock(), self.settings.future_tolerance_s, self.settings.max_batch_readings,
                            self.registry.devices_by_address(m.device.institution))
        m.decoded = m.decoder.decode(m.payload, ctx)
        for bad in m.decoded.rejects:
            self.reject(m, bad.reason, bad.detail, bad.payload)

    def _derive(self, m: Message) -> None:
        assert m.device is not None and m.decoded is not None  # decoded
        self._derive_device(m, m.device, m.decoded)
        for device, decoded in m.decoded.forwarded.items():  # frames a gateway forwarded for its other meters
            self._derive_device(m, device, decoded)

    def _derive_device(self, m: Message, device: Device, decoded: Decoded) -> None:
        if decoded.columns is not None:
            self._columns(m, device, decoded.columns)
        if decoded.samples and self._readings(m, device, decoded.samples, decoded.stamped):
            return  # a frame received again: its values are the first one's too
        if decoded.weighings:
            self._weighings(m, device, decoded.weighings)
        m.out.values += [MeterValuePoint(device.id, device.institution, v.name, v.ts, v.value) for v in decoded.values]

    # -- derive: readings ---------------------------------------------------------------------------

    def _derive_at_once(self, messages: list[Message]) -> set[int]:
        """The plain next uploads among ``messages``, appended all at once; the ``id`` of each message done.

        In rounds: each takes, of every device, its first message not yet
        done when that holds nothing but a batch of columns, and
        ``extend_all`` appends those that are plainly the device's next
        readings.  A message it leaves (or that is not plain columns) stays
        for ``_derive``, and so does every later message of its device.
        """
        done: set[int] = set()
        tried: set[int] = set()
        while True:
            touched: set[str] = set()
            chosen: list[tuple[Message, Device]] = []
            for m in messages:
                decoded, device = m.decoded, m.device
                if m.settled or decoded is None or device is None or id(m) in done:
                    continue
                if decoded.forwarded:
                    touched.update(d.id for d in decoded.forwarded)
                elif (decoded.columns is not None and not decoded.samples and not decoded.weighings
                      and not decoded.values and device.id not in touched and id(m) not in tried):
                    chosen.append((m, device))
                    tried.add(id(m))
                touched.add(device.id)
            if not chosen:
                return done
            try:
                done |= self._append_at_once(chosen)
            except Exception as exc:  # noqa: BLE001  (then each message goes its own way, as before)
                self.log_summary.error("internal errors while deriving a flush at once", exc, chosen[0][0].topic)
                return done

    def _append_at_once(self, chosen: list[tuple[Message, Device]]) -> set[int]:
        columns = [m.decoded.columns for m, _ in chosen]  # type: ignore[union-attr]  (chosen: decoded columns)
        counts = [len(c.ts) for c in columns]  # type: ignore[union-attr]
        ts = np.concatenate([c.ts for c in columns])  # type: ignore[union-attr]
        register = np.concatenate([c.value for c in columns]) * np.repeat(  # type: ignore[union-attr]
            [d.multiplier for _, d in chosen], counts)
        places = [self.registry.institutions[d.institution] for _, d in chosen]  # before any history moves
        extended = extend_all([self.history(d) for _, d in chosen], ts, register, counts)
        done: set[int] = set()
        start = 0
        for (m, device), inst, count, appended in zip(chosen, places, counts, extended.done, strict=True):
            end = start + count
            if appended:
                self._keep(m, ReadingColumns(device.id, device.institution, inst.city, inst.type, device.kind,
                                             ts[start:end], register[start:end], extended.consumption[start:end],
                                             extended.interval_s[start:end]))
                done.add(id(m))
            start = end
        return done

    def history(self, device: Device) -> DeviceHistory:
        history = self.histories.get(device.id)
        if history is None:
            history = self.histories[device.id] = DeviceHistory(self.settings.history_window,
                                                                multiplier=device.multiplier)
        return history

    def point(self, device: Device, p: Interval) -> ReadingPoint:
        """A reading as stored: the device's registry tags, and its interval."""
        inst = self.registry.institutions[device.institution]
        return ReadingPoint(device.id, device.institution, inst.city, inst.type, device.kind,
                            p.ts, p.register, p.consumption, p.interval_s, p.flag)

    def _columns(self, m: Message, device: Device, columns: SampleColumns) -> None:
        """A batch appended to the history at once, or, when it is not plainly newer, reading by reading."""
        extended = self.history(device).extend(columns.ts, columns.value * device.multiplier)
        if extended is None:
            self._readings(m, device, columns.samples(), stamped=False)
            return
        inst = self.registry.institutions[device.institution]
        self._keep(m, ReadingColumns(device.id, device.institution, inst.city, inst.type, device.kind, extended.ts,
                                     extended.register, extended.consumption, extended.interval_s))

    def _keep(self, m: Message, block: ReadingColumns) -> None:
        """Readings appended at once, as the collector keeps them (columns) or as points."""
        if self.columns:
            m.out.reading_columns.append(block)
        else:
            m.out.readings += block.points()

    def _readings(self, m: Message, device: Device, samples: list[Sample], stamped: bool) -> bool:
        """Add the samples to the device's history; True when they were all a redelivered frame."""
        history = self.history(device)
        inst = self.registry.institutions[device.institution]
        tags = (device.id, device.institution, inst.city, inst.type, device.kind)
        repeats = 0
        for sample in sorted(samples, key=lambda s: s.ts):
            register = sample.value * device.multiplier
            if stamped and history.repeats_latest(sample.ts, register, self.settings.frame_repeat_s):
                m.duplicates += 1
                repeats += 1
                continue
            result = history.add(sample.ts, register)
            if result.status == "new":
                for p in result.points:
                    if p.flag:
                        m.flags[p.flag] += 1
                        self.log_summary.note("register anomalies", p.flag, f"{device.id} at {p.ts}")
                    m.out.readings.append(ReadingPoint(*tags, p.ts, p.register, p.consumption, p.interval_s, p.flag))
            elif result.status == "duplicate":
                m.duplicates += 1
            elif result.status == "conflict":
                self.reject(m, reasons.CONFLICTING_READING,
                            f"reading at {sample.ts} differs from the one already received for that second",
                            f'{{"ts": {sample.ts}, "value": {sample.value!r}}}'.encode())
            else:  # late: older than the history, placed from the store (collector.late)
                m.late.append(self.point(device, result.points[0]))
        return repeats == len(samples)

    # -- derive: weighings --------------------------------------------------------------------------

    def _repeated(self, m: Message, device: Device, w: RawWeighing) -> bool:
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
            m.duplicates += 1
        else:
            self.reject(m, reasons.CONFLICTING_READING,
                        f"weighing at {w.ts} of card {w.card} differs from the one already received ({seen} kg)",
                        json.dumps({"ts": w.ts, "card": w.card, "weight_kg": w.weight_kg}).encode())
        return True

    def _weighings(self, m: Message, device: Device, weighings: list[RawWeighing]) -> None:
        inst = self.registry.institutions[device.institution]
        for w in weighings:
            if self._repeated(m, device, w):
                continue
            card = self.registry.cards.get(w.card)
            if card is None or card.institution != device.institution:
                m.unknown_cards += 1
                self.log_summary.note("weighings with unknown cards", device.institution, f"{device.id} card {w.card}")
                zone = category = cleaner = owner = UNKNOWN
            else:
                zone, category, cleaner, owner = card.zone, card.category, card.cleaner, card.owner_unit
            m.out.weighings.append(WeighingPoint(device.id, device.institution, inst.city, zone, category,
                                                 w.ts, w.weight_kg, w.card, cleaner, owner))


def _describe(exc: BaseException) -> str:
    try:
        return str(exc)[:300]
    except Exception:  # noqa: BLE001  (str() itself can fail, e.g. on a huge int)
        return "(no description)"
