"""What the province's gateways send over a time window: messages plus the truth about them.

Meters read every 15 minutes and upload every 1, 2 or 4 hours with the
cached readings in one batch (NB-IoT).  Faults are injected on purpose and
each one is written down as a ``Label`` so that what meterwatch stores,
rejects and alerts can be checked against it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path

import numpy as np

from meterwatch.const import UP_PREFIX
from meterwatch.registry import Device, Institution
from simulators.profiles import PER_HOUR, hourly_factor
from simulators.province import Province

READ_INTERVAL_S = 900
UPLOAD_EVERY = (4, 8, 16)  # readings per upload: 1 h, 2 h, 4 h
UPLOAD_P = (0.5, 0.3, 0.2)


@dataclass(frozen=True, slots=True)
class Message:
    at: float  # simulated Unix time of publication
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class Label:
    """Ground truth of one injected fault: what meterwatch should make of it."""

    fault: str  # silent, spoof, malformed, retry, unknown_device, unknown_card
    institution: str
    device: str
    expect: str  # an alert rule name, or reject:<reason>, or duplicate
    start: int
    end: int
    magnitude: float


@dataclass(frozen=True)
class FaultRates:
    silent: float = 0.01  # share of meters that stop reporting part-way
    spoof: float = 0.002  # share of messages re-sent under another institution's topic
    malformed: float = 0.002
    retry: float = 0.02  # share of messages sent twice
    unknown_device: int = 3
    unknown_card: float = 0.02


@dataclass
class Traffic:
    messages: list[Message] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    valid_readings: int = 0  # distinct readings a correct collector stores
    valid_weighings: int = 0


def _base_rate(device: Device, inst: Institution) -> float:
    size = inst.occupants if device.kind == "water" else inst.floor_area_m2
    return PER_HOUR[device.kind] * size / device.multiplier


def _payload(ts: np.ndarray, values: np.ndarray, rfc3339: bool) -> bytes:
    def stamp(t: int) -> int | str:
        if not rfc3339:
            return int(t)
        return np.datetime_as_string(np.datetime64(int(t) + 8 * 3600, "s")) + "+08:00"

    items = [{"ts": stamp(t), "value": round(float(v), 3)} for t, v in zip(ts, values, strict=True)]
    body = items[0] if len(items) == 1 else {"readings": items, "battery_v": 3.6, "rssi": -95}
    return json.dumps(body, separators=(",", ":")).encode()


def _meter_messages(device: Device, inst: Institution, start: int, end: int,
                    rng: np.random.Generator, traffic: Traffic, rates: FaultRates) -> None:
    first = (start // READ_INTERVAL_S + 1) * READ_INTERVAL_S
    ts = np.arange(first, end + 1, READ_INTERVAL_S, dtype=np.int64)
    if ts.size == 0:
        return
    use = _base_rate(device, inst) * hourly_factor(inst.type, ts) * (READ_INTERVAL_S / 3600)
    use *= rng.lognormal(0.0, 0.15, size=ts.size)
    register = rng.uniform(100, 50_000) + np.cumsum(use)
    if rng.random() < rates.silent and ts.size > 8:
        stop = int(rng.integers(ts.size // 5, ts.size * 3 // 5))
        traffic.labels.append(Label("silent", inst.id, device.id, "silent", int(ts[stop]), end, 0.0))
        ts, register = ts[:stop], register[:stop]
    every = int(rng.choice(UPLOAD_EVERY, p=UPLOAD_P))
    phase = int(rng.integers(0, every))
    topic = f"{UP_PREFIX}/{inst.id}/{device.id}/reading"
    rfc3339 = bool(rng.random() < 0.5)
    cuts = list(range(phase or every, ts.size, every)) + [ts.size]
    lo = 0
    for hi in cuts:
        if hi <= lo:
            continue
        chunk_ts, chunk_reg = ts[lo:hi], register[lo:hi]
        at = float(chunk_ts[-1]) + float(rng.uniform(5, 120))
        roll = rng.random()
        if roll < rates.malformed:
            traffic.messages.append(Message(at, topic, b'{"readings": [{"ts": ' + str(int(chunk_ts[0])).encode()))
            traffic.labels.append(Label("malformed", inst.id, device.id, "reject:malformed_json",
                                        int(chunk_ts[0]), int(chunk_ts[-1]), float(hi - lo)))
            lo = hi
            continue
        payload = _payload(chunk_ts, chunk_reg, rfc3339)
        traffic.messages.append(Message(at, topic, payload))
        traffic.valid_readings += hi - lo
        if roll < rates.malformed + rates.retry:
            traffic.messages.append(Message(at + 30, topic, payload))
            traffic.labels.append(Label("retry", inst.id, device.id, "duplicate",
                                        int(chunk_ts[0]), int(chunk_ts[-1]), float(hi - lo)))
        lo = hi


def _scale_messages(device: Device, inst: Institution, cards: list[str], start: int, end: int,
                    rng: np.random.Generator, traffic: Traffic, rates: FaultRates) -> None:
    topic = f"{UP_PREFIX}/{inst.id}/{device.id}/weighing"
    day = 86400
    for day_start in range(start - start % day, end, day):
        for _ in range(int(rng.integers(2, 7))):
            ts = day_start + int(rng.integers(0, 10 * 3600))  # 08:00-18:00 local = 00:00-10:00 UTC
            if not start <= ts <= end:
                continue
            card = str(rng.choice(cards)) if cards else "C-none"
            if rng.random() < rates.unknown_card or not cards:
                card = f"X{int(rng.integers(0, 10**8)):08d}"
                traffic.labels.append(Label("unknown_card", inst.id, device.id, "sorting", ts, ts, 1.0))
            weight = round(float(rng.gamma(2.0, 6.0)) + 0.5, 2)
            body = {"ts": ts, "card": card, "weight_kg": weight}
            traffic.messages.append(Message(float(ts) + 5, topic, json.dumps(body).encode()))
            traffic.valid_weighings += 1


def _spoofs(traffic: Traffic, province: Province, rng: np.random.Generator, rates: FaultRates) -> None:
    insts = [i.id for i in province.institutions]
    candidates = [m for m in traffic.messages if m.topic.endswith("/reading")]
    count = int(len(candidates) * rates.spoof)
    for idx in rng.choice(len(candidates), size=min(count, len(candidates)), replace=False):
        m = candidates[int(idx)]
        _, _, real_inst, dev, suffix = m.topic.split("/", 4)
        other = str(rng.choice(insts))
        if other == real_inst:
            continue
        traffic.messages.append(Message(m.at + 1, f"{UP_PREFIX}/{other}/{dev}/{suffix}", m.payload))
        traffic.labels.append(Label("spoof", other, dev, "reject:institution_mismatch", int(m.at), int(m.at), 1.0))
    for k in range(rates.unknown_device):
        inst = str(rng.choice(insts))
        dev = f"{inst}-ghost{k}"
        at = float(rng.uniform(traffic.messages[0].at if traffic.messages else 0, traffic.messages[-1].at if traffic.messages else 1))
        traffic.messages.append(Message(at, f"{UP_PREFIX}/{inst}/{dev}/reading", b'{"ts": 1764000000, "value": 1.0}'))
        traffic.labels.append(Label("unknown_device", inst, dev, "reject:unknown_device", int(at), int(at), 1.0))


def simulate_traffic(province: Province, start: int, end: int, seed: int = 42,
                     rates: FaultRates | None = None) -> Traffic:
    """Every message of the window [start, end], in publication order, and the labels."""
    rates = rates or FaultRates()
    rng = np.random.default_rng(seed)
    institutions = {i.id: i for i in province.institutions}
    cards_of: dict[str, list[str]] = {}
    for c in province.cards:
        cards_of.setdefault(c.institution, []).append(c.card)
    traffic = Traffic()
    for device in province.devices:
        inst = institutions[device.institution]
        if device.kind == "scale":
            _scale_messages(device, inst, cards_of.get(inst.id, []), start, end, rng, traffic, rates)
        else:
            _meter_messages(device, inst, start, end, rng, traffic, rates)
    traffic.messages.sort(key=lambda m: m.at)
    _spoofs(traffic, province, rng, rates)
    traffic.messages.sort(key=lambda m: m.at)
    return traffic


def write_labels(labels: list[Label], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([f.name for f in fields(Label)])
        writer.writerows(astuple(label) for label in labels)
