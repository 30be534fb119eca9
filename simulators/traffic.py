"""What the province's gateways send: NB-IoT uploads, weighings, and the garbage untrusted gateways add.

Meters read every quarter-hour and upload cached readings in one message:
every 1, 2 or 4 hours, or (30% of them) once a day at local midnight, which
is the midnight burst.  Some meters' clocks are a few minutes off, some
uploads arrive hours late (after newer ones), some twice.  On top: spoofed
topics, garbled payloads, devices that are not in the registry, unknown
RFID cards and institutions whose cleaners put everything in 'other'.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from meterwatch.const import UP_PREFIX
from meterwatch.localtime import DAY, LOCAL_UTC_OFFSET_S, local_day, local_midnight
from simulators.faults import FaultRates, Label
from simulators.meters import SLOT_S, Chunk, FleetModel
from simulators.province import Province
from simulators.weighings import WeighingModel

UPLOAD_EVERY = (4, 8, 16, 0)  # quarter-hours per upload; 0 = once a day at midnight
UPLOAD_P = (0.35, 0.2, 0.15, 0.3)
LATE_P = 0.02  # uploads delayed by 1-6 h
SKEWED_P = 0.1  # meters whose clock is up to 5 minutes off


@dataclass(frozen=True, slots=True)
class Message:
    at: float  # simulated Unix time of publication
    topic: str
    payload: bytes


@dataclass
class Traffic:
    messages: list[Message] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    valid_readings: int = 0  # distinct readings a correct collector stores
    valid_weighings: int = 0
    last_reading: dict[str, int] = field(default_factory=dict)  # meter -> newest reading delivered intact


class Gateways:
    """Turns the fleet model's chunks into MQTT messages; deterministic per seed."""

    def __init__(self, model: FleetModel, province: Province, rates: FaultRates | None = None) -> None:
        self.model = model
        self.province = province
        self.rates = rates or FaultRates()
        rng = np.random.default_rng([model.seed, 4])
        n = len(model.devices)
        self.every = rng.choice(UPLOAD_EVERY, size=n, p=UPLOAD_P)
        self.phase = rng.integers(0, 16, size=n)
        self.skew = np.where(rng.random(n) < SKEWED_P, rng.integers(-300, 301, size=n), 0)
        self.rfc3339 = rng.random(n) < 0.5
        self.topics = [f"{UP_PREFIX}/{d.institution}/{d.id}/reading" for d in model.devices]
        self.scales = WeighingModel(province, model.seed, model.start, model.end, self.rates)
        self.labels: list[Label] = model.labels() + self.scales.labels

    # -- meters -------------------------------------------------------------------------------------

    def _payload(self, d: int, ts: np.ndarray, values: np.ndarray) -> bytes:
        if self.rfc3339[d]:
            local = (ts + LOCAL_UTC_OFFSET_S).astype("datetime64[s]")
            stamps: list = [s + "+08:00" for s in np.datetime_as_string(local)]
        else:
            stamps = ts.tolist()
        items = [{"ts": t, "value": v} for t, v in zip(stamps, np.round(values, 3).tolist(), strict=True)]
        body = items[0] if len(items) == 1 else {"readings": items, "battery_v": 3.6, "rssi": -95}
        return json.dumps(body, separators=(",", ":")).encode()

    def chunk_messages(self, chunk: Chunk, rng: np.random.Generator, traffic: Traffic) -> None:
        raw = chunk.register / self.model.multiplier[:, None]
        for d in range(len(self.model.devices)):
            sent = np.flatnonzero(chunk.reported[d])
            if not sent.size:
                continue
            ts = chunk.ts[sent] + self.skew[d]
            every = int(self.every[d])
            if every == 0:  # daily upload at the next local midnight
                groups = local_day(ts)
            else:
                groups = (sent + self.phase[d]) // every
            cuts = np.flatnonzero(np.diff(groups)) + 1
            for part in np.split(np.arange(sent.size), cuts):
                self._upload(d, ts[part], raw[d, sent[part]], every, rng, traffic)

    def _upload(self, d: int, ts: np.ndarray, values: np.ndarray, every: int, rng: np.random.Generator,
                traffic: Traffic) -> None:
        device = self.model.devices[d]
        if every == 0:
            at = float(local_midnight(int(ts[-1])) + DAY) + rng.uniform(0, 60)
        else:
            at = float(ts[-1]) + rng.uniform(5, 120)
        roll = rng.random()
        if roll < self.rates.malformed:
            traffic.messages.append(Message(at, self.topics[d], b'{"readings": [{"ts": ' + str(int(ts[0])).encode()))
            traffic.labels.append(Label("malformed", device.institution, device.id, "reject:malformed_json",
                                        int(ts[0]), int(ts[-1]), float(ts.size)))
            return
        if rng.random() < LATE_P:
            at += rng.uniform(1, 6) * 3600
        payload = self._payload(d, ts, values)
        traffic.messages.append(Message(at, self.topics[d], payload))
        traffic.valid_readings += ts.size
        traffic.last_reading[device.id] = max(traffic.last_reading.get(device.id, 0), int(ts[-1]))
        if roll < self.rates.malformed + self.rates.retry:
            traffic.messages.append(Message(at + 30, self.topics[d], payload))
            traffic.labels.append(Label("retry", device.institution, device.id, "duplicate",
                                        int(ts[0]), int(ts[-1]), float(ts.size)))

    # -- scales ---------------------------------------------------------------------------------------

    def weighings(self, start: int, end: int, rng: np.random.Generator, traffic: Traffic) -> None:
        for w in self.scales.events(start, end, rng):
            body = {"ts": w.ts, "card": w.card, "weight_kg": w.weight_kg}
            topic = f"{UP_PREFIX}/{w.scale.institution}/{w.scale.id}/weighing"
            traffic.messages.append(Message(float(w.ts) + 5, topic, json.dumps(body).encode()))
            traffic.valid_weighings += 1

    # -- untrusted gateways ---------------------------------------------------------------------------

    def garbage(self, rng: np.random.Generator, traffic: Traffic) -> None:
        insts = [i.id for i in self.province.institutions]
        readings = [m for m in traffic.messages if m.topic.endswith("/reading")]
        count = min(len(readings), int(len(readings) * self.rates.spoof))
        for idx in rng.choice(len(readings), size=count, replace=False) if count else []:
            m = readings[int(idx)]
            _, _, real, dev, suffix = m.topic.split("/", 4)
            other = str(rng.choice(insts))
            if other == real:
                continue
            traffic.messages.append(Message(m.at + 1, f"{UP_PREFIX}/{other}/{dev}/{suffix}", m.payload))
            traffic.labels.append(Label("spoof", other, dev, "reject:institution_mismatch", int(m.at), int(m.at), 1.0))
        if not traffic.messages:
            return
        lo, hi = min(m.at for m in traffic.messages), max(m.at for m in traffic.messages)
        for k in range(self.rates.unknown_device):
            inst = str(rng.choice(insts))
            dev = f"{inst}-ghost{k}"
            at = float(rng.uniform(lo, hi))
            traffic.messages.append(Message(at, f"{UP_PREFIX}/{inst}/{dev}/reading",
                                            json.dumps({"ts": int(at) - 60, "value": 1.0}).encode()))
            traffic.labels.append(Label("unknown_device", inst, dev, "reject:unknown_device", int(at), int(at), 1.0))


def iter_traffic(province: Province, start: int, end: int, seed: int = 42,
                 rates: FaultRates | None = None) -> Iterator[Traffic]:
    """The window's traffic a local day at a time (messages in publication order within each day);
    the last item also carries the labels and the garbage."""
    model = FleetModel(province, start, end, seed, rates)
    gateways = Gateways(model, province, rates)
    rng = np.random.default_rng([seed, 5])
    pending: Traffic | None = None
    for chunk in model.chunks():
        day = Traffic()
        gateways.chunk_messages(chunk, rng, day)
        gateways.weighings(int(chunk.ts[0]), int(chunk.ts[-1]) + SLOT_S, rng, day)
        if pending is not None:
            pending.messages.sort(key=lambda m: m.at)
            yield pending
        pending = day
    final = pending or Traffic()
    gateways.garbage(rng, final)
    final.messages.sort(key=lambda m: m.at)
    final.labels = gateways.labels + final.labels
    yield final


def simulate_traffic(province: Province, start: int, end: int, seed: int = 42,
                     rates: FaultRates | None = None) -> Traffic:
    """All of the window's traffic at once, in publication order (for small windows: demo, tests)."""
    total = Traffic()
    for part in iter_traffic(province, start, end, seed, rates):
        total.messages += part.messages
        total.labels += part.labels
        total.valid_readings += part.valid_readings
        total.valid_weighings += part.valid_weighings
        for device, ts in part.last_reading.items():
            total.last_reading[device] = max(total.last_reading.get(device, 0), ts)
    total.messages.sort(key=lambda m: m.at)
    return total
