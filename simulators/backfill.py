"""History straight into a store: what a perfect collector would have stored, a day at a time.

Vectorised over the whole fleet: registers come from the fleet model,
consumption is the difference from each meter's previous reported reading
(gaps of silent meters bridged), registers that go down are classified as
the collector does (``collector.registers``), and each day is one columnar
write.  NB-IoT transport effects (batching, retries, garbage) are the
publish mode's business, not history's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from collector.registers import DECREASE_FLAGS, classify_decreases
from meterwatch.const import UNKNOWN
from meterwatch.localtime import DAY
from meterwatch.store import Batch, ReadingPoint, Store, WeighingPoint
from simulators.faults import FaultRates, Label
from simulators.meters import Chunk, FleetModel
from simulators.province import Province
from simulators.weighings import WeighingModel

log = logging.getLogger(__name__)
DEVICES_PER_WRITE = 10_000  # ~1 M readings a write: memory bounded whatever the province's size
PROGRESS_S = 30.0  # at most one progress line this often within a day


@dataclass
class BackfillResult:
    readings: int = 0
    weighings: int = 0
    seconds: float = 0.0
    labels: list[Label] | None = None

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0


@dataclass
class ChunkUse:
    """What a perfect collector derives from one chunk: consumption per reading, and which were reported."""

    consumption: np.ndarray  # (N, T)
    flags: np.ndarray  # (N, T) object: None or a register flag
    interval: np.ndarray  # (N, T) seconds since the meter's previous reported reading, NaN for the first
    reported: np.ndarray  # (N, T) bool


def chunk_use(model: FleetModel, chunk: Chunk, prev_reg: np.ndarray, prev_ts: np.ndarray) -> ChunkUse:
    """Consumption of one chunk; updates ``prev_reg`` / ``prev_ts`` (each meter's last reported) in place."""
    n, t = chunk.register.shape
    values = np.where(chunk.reported, chunk.register, np.nan)
    carry_r = np.concatenate([prev_reg[:, None], values], axis=1)
    carry_t = np.concatenate([prev_ts[:, None], np.broadcast_to(chunk.ts, (n, t))], axis=1)
    position = np.where(~np.isnan(carry_r), np.arange(t + 1)[None, :], 0)
    np.maximum.accumulate(position, axis=1, out=position)
    before = position[:, :-1]
    prev_values = np.take_along_axis(carry_r, before, axis=1)
    prev_times = np.take_along_axis(carry_t, before, axis=1)
    diff = chunk.register - prev_values
    consumption = np.maximum(diff, 0.0)
    flags = np.full((n, t), None, dtype=object)
    down = diff < -1e-9
    if down.any():
        multiplier = np.broadcast_to(model.multiplier[:, None], (n, t))
        which, wrapped = classify_decreases(prev_values[down], chunk.register[down], multiplier[down])
        consumption[down] = wrapped
        flags[down] = np.array(DECREASE_FLAGS, dtype=object)[which]
    interval = np.where(np.isnan(prev_values), np.nan, chunk.ts[None, :] - prev_times)
    last = position[:, -1]
    prev_reg[:] = carry_r[np.arange(n), last]
    prev_ts[:] = carry_t[np.arange(n), last]
    return ChunkUse(consumption, flags, interval, chunk.reported)


def chunk_columns(model: FleetModel, chunk: Chunk, prev_reg: np.ndarray, prev_ts: np.ndarray,
                  devices_per_write: int | None = None) -> Iterator[dict[str, object]]:
    """Reading columns of one chunk (see ``chunk_use``), ``devices_per_write`` meters at a time.

    The arrays of a province-day are compact; the columns a store takes are
    Python lists (DuckDB's Arrow) or lines (InfluxDB), several times larger:
    at 240,000 devices a whole day of them is gigabytes, so they are built
    and written a slice of the fleet at a time.
    """
    use = chunk_use(model, chunk, prev_reg, prev_ts)
    n, t = chunk.register.shape
    step = devices_per_write or n
    for lo in range(0, n, step):
        yield _columns(model, chunk, use, slice(lo, min(n, lo + step)))


def _columns(model: FleetModel, chunk: Chunk, use: ChunkUse, part: slice) -> dict[str, object]:
    keep = use.reported[part]
    rows = np.nonzero(keep)[0] + part.start
    multiplier = np.broadcast_to(model.multiplier[part, None], keep.shape)
    register = chunk.register[part]
    devices, insts = model.devices, model.institutions
    return {
        "device": [devices[i].id for i in rows], "institution": [devices[i].institution for i in rows],
        "city": [insts[i].city for i in rows], "type": [insts[i].type for i in rows],
        "kind": [devices[i].kind for i in rows],
        # The meter shows its raw register to 3 decimals; the multiplier applies after (as in the MQTT traffic).
        "ts": np.broadcast_to(chunk.ts, keep.shape)[keep],
        "register": np.round(register[keep] / multiplier[keep], 3) * multiplier[keep],
        "consumption": np.round(use.consumption[part][keep], 4), "interval_s": use.interval[part][keep],
        "flag": use.flags[part][keep].tolist(),
    }


async def backfill(store: Store, province: Province, start: int, end: int, seed: int = 42,
                   rates: FaultRates | None = None, until: int | None = None) -> BackfillResult:
    """History of [start, end) as the fleet model has it; only what happened before ``until`` is written.

    ``until`` lets live traffic simulated over the same window (same model,
    same registers) take over where the history stops.
    """
    rates = rates or FaultRates()
    model = FleetModel(province, start, end, seed, rates)
    scales = WeighingModel(province, seed, model.start, end, rates)
    cards = {c.card: c for c in province.cards}
    institutions = {i.id: i for i in province.institutions}
    rng = np.random.default_rng([seed, 7])
    prev_reg = np.full(len(model.devices), np.nan)
    prev_ts = np.zeros(len(model.devices), dtype=np.int64)
    result = BackfillResult(labels=model.labels() + scales.labels)
    started = time.monotonic()
    days = max(1, -(-(end - model.start) // DAY))
    for k, chunk in enumerate(model.chunks(), 1):
        if until is not None:
            if chunk.ts[0] >= until:
                break
            chunk.reported &= chunk.ts[None, :] < until
        last_log = time.monotonic()
        for columns in chunk_columns(model, chunk, prev_reg, prev_ts, DEVICES_PER_WRITE):
            await store.write_columns(ReadingPoint, columns)
            result.readings += len(columns["device"])
            if time.monotonic() - last_log > PROGRESS_S:  # a 10x province-day takes minutes
                last_log = time.monotonic()
                log.info("backfill progress", extra={"day": k, "of": days, "readings": result.readings})
        points = []
        for w in scales.events(int(chunk.ts[0]), min(int(chunk.ts[-1]) + 900, until or end), rng):
            card = cards.get(w.card)
            known = card is not None and card.institution == w.scale.institution
            points.append(WeighingPoint(w.scale.id, w.scale.institution, institutions[w.scale.institution].city,
                                        card.zone if known else UNKNOWN, card.category if known else UNKNOWN,
                                        w.ts, w.weight_kg, w.card, card.cleaner if known else UNKNOWN,
                                        card.owner_unit if known else UNKNOWN))
        if points:
            await store.write(Batch(weighings=points))
        result.weighings += len(points)
        elapsed = time.monotonic() - started
        log.info("backfill", extra={"day": k, "of": days, "readings": result.readings,
                                    "rate_per_s": round(result.readings / elapsed) if elapsed else 0})
    result.seconds = time.monotonic() - started
    return result
