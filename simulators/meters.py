"""The fleet's meters as arrays: true use per quarter-hour and the registers it adds up to.

Everything is vectorised over devices (rows) and quarter-hours (columns)
and generated one local day at a time, so a month of a 25,000-meter
province fits in memory a day at a time.  The same (seed, window) always
gives the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from meterwatch.localtime import DAY, local_midnight
from meterwatch.registry import Device, Institution
from simulators.faults import COUNTER_MAX, EXPECT, FaultRates, Label, plan_faults
from simulators.profiles import PER_HOUR, use_factor
from simulators.province import Province

SLOT_S = 900
SLOT_H = SLOT_S / 3600


@dataclass
class Chunk:
    """One stretch of the window: reading times, registers and what was really reported."""

    ts: np.ndarray  # (T,) Unix seconds of the quarter-hours
    register: np.ndarray  # (N, T) true units (m3, kWh, GJ), after the multiplier
    reported: np.ndarray  # (N, T) bool: False where a meter was silent


class FleetModel:
    """The meters of a province over a window [start, end), with their faults."""

    def __init__(self, province: Province, start: int, end: int, seed: int, rates: FaultRates | None = None) -> None:
        self.start = (start // SLOT_S + 1) * SLOT_S
        self.end = end
        self.seed = seed
        institutions = {i.id: i for i in province.institutions}
        self.devices: list[Device] = [d for d in province.devices if d.kind != "scale"]
        self.institutions: list[Institution] = [institutions[d.institution] for d in self.devices]
        self.kinds = np.array([d.kind for d in self.devices])
        self.multiplier = np.array([d.multiplier for d in self.devices])
        rng = np.random.default_rng([seed, 1])
        size = np.array([i.occupants if d.kind == "water" else i.floor_area_m2
                         for d, i in zip(self.devices, self.institutions, strict=True)], dtype=np.float64)
        per_meter = np.array([PER_HOUR[k] for k in self.kinds]) * size
        meters_of = {}
        for d in self.devices:
            meters_of[(d.institution, d.kind)] = meters_of.get((d.institution, d.kind), 0) + 1
        share = np.array([1.0 / meters_of[(d.institution, d.kind)] for d in self.devices])
        self.base = per_meter * share * rng.lognormal(0.0, 0.25, len(self.devices))  # per hour, true units
        self.groups = sorted({(i.type, d.kind) for d, i in zip(self.devices, self.institutions, strict=True)})
        index = {g: k for k, g in enumerate(self.groups)}
        self.group = np.array([index[(i.type, d.kind)] for d, i in zip(self.devices, self.institutions, strict=True)])
        self.faults = plan_faults(self.kinds, self.start, end, np.random.default_rng([seed, 2]),
                                  rates or FaultRates())
        # A burst is far above the building's own normal: 10-25 times its mean hourly use, at least 1 m3/h.
        self.faults = [replace(f, magnitude=round(max(1.0, f.magnitude / 15 * 25 * self.base[f.device]), 3))
                       if f.kind == "burst" else f for f in self.faults]
        raw0 = rng.uniform(100, 20_000, len(self.devices))
        for f in self.faults:
            if f.kind == "rollover":  # just below the top: it wraps within the first days
                raw0[f.device] = COUNTER_MAX - rng.uniform(0.2, 1.0) * self.base[f.device] * 24 / self.multiplier[f.device]
        self._raw = raw0  # meter register (before multiplier), carried across chunks
        self._replaced = np.zeros(len(self.devices), dtype=bool)
        self._wraps = np.zeros(len(self.devices), dtype=bool)  # only meters with a rollover fault wrap
        for f in self.faults:
            if f.kind == "rollover":
                self._wraps[f.device] = True

    def labels(self) -> list[Label]:
        out = []
        for f in self.faults:
            d = self.devices[f.device]
            magnitude = (f.end - f.start) / 3600 if f.kind == "silent" else f.magnitude
            out.append(Label(f.kind, d.institution, d.id, EXPECT[f.kind], f.start, f.end, magnitude))
        return out

    def chunks(self) -> Iterator[Chunk]:
        """The window a local day at a time (the first and last may be partial)."""
        edge = local_midnight(self.start)
        t = self.start
        while t < self.end:
            stop = min(self.end, edge + DAY * (1 + (t - edge) // DAY))
            ts = np.arange(t, stop, SLOT_S, dtype=np.int64)
            if ts.size:
                yield self._chunk(ts)
            t = stop

    def _chunk(self, ts: np.ndarray) -> Chunk:
        rng = np.random.default_rng([self.seed, 3, int(ts[0])])
        factor = np.stack([use_factor(t, k, ts) for t, k in self.groups])[self.group]  # (N, T)
        mean = self.base[:, None] * factor * SLOT_H
        use = mean * rng.lognormal(0.0, 0.15, mean.shape)
        water = self.kinds == "water"
        draw_p = np.clip(factor[water] / 2.0, 0.03, 0.95)  # taps are open some quarter-hours, not all
        use[water] = np.where(rng.random(draw_p.shape) < draw_p, use[water] / draw_p, 0.0)
        reported = np.ones(use.shape, dtype=bool)
        reset_at = np.full(len(self.devices), -1)
        for f in self.faults:
            window = (ts >= f.start) & (ts < f.end)
            if not window.any():
                continue
            if f.kind in ("leak", "burst"):
                use[f.device, window] += f.magnitude * SLOT_H
            elif f.kind == "frozen":
                use[f.device, window] = 0.0
            elif f.kind == "backwards":
                use[f.device, window] = -np.abs(use[f.device, window])
            elif f.kind == "silent":
                reported[f.device, window] = False
            elif f.kind == "replacement" and not self._replaced[f.device]:
                reset_at[f.device] = int(np.argmax(window))
        raw = self._raw[:, None] + np.cumsum(use / self.multiplier[:, None], axis=1)
        for d in np.flatnonzero(reset_at >= 0):  # the new meter starts from (almost) zero
            k = reset_at[d]
            raw[d, k:] = raw[d, k:] - raw[d, k] + rng.uniform(0, 5)
            self._replaced[d] = True
        self._raw = raw[:, -1].copy()
        raw[self._wraps] = np.mod(raw[self._wraps], COUNTER_MAX)
        return Chunk(ts, raw * self.multiplier[:, None], reported)
