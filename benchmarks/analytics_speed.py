"""Analytics speed: every meter rule over a month of the province in memory, numpy against pandas and the floor.

Input: 25,000 meters x 30 days x 96 quarter-hours of consumption (float32,
NaN where a reading is missing), a third of them water meters, five meters
to an institution.  One pass derives what each rule needs (last reading;
night minimum flow per night; hourly flows, their 95th percentile and the
latest full hour; daily use, its usual level and the neighbours' movement;
each institution's month) and runs the rules of ``analytics.rules`` on it
(sorting is over weighings, not meters, and is left out).

- numpy: the arrays as they are (``features_numpy``);
- pandas: the same features by ``groupby`` on the long table a tutorial
  would build (``features_pandas``); pandas is installed for this only;
- floor: one sweep over the input array (its sum), the time below which no
  pass that reads every value can go.

Each variant runs in its own process, so its peak memory is its own.

    python -m benchmarks.analytics_speed                  # 25,000 meters
    python -m benchmarks.analytics_speed --meters 1000    # quick
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass

import numpy as np

from analytics.rules.burst import burst, latest_hour
from analytics.rules.leak import leak
from analytics.rules.meter_fault import meter_fault
from analytics.rules.silent import silent
from meterwatch.localtime import DAY

DAYS, SLOTS = 30, 96
NIGHT = slice(8, 16)  # 02:00-04:00
SLOT_S = 900


@dataclass
class Fleet:
    use: np.ndarray  # (meters, days, slots) float32, NaN = missing
    water: np.ndarray  # (meters,) bool
    institution: np.ndarray  # (meters,) int


def fleet(meters: int, seed: int = 1) -> Fleet:
    rng = np.random.default_rng(seed)
    base = rng.lognormal(0.0, 0.5, meters).astype(np.float32)
    shape = np.concatenate([np.full(24, 0.2), np.full(40, 1.5), np.full(32, 0.6)]).astype(np.float32)
    use = np.empty((meters, DAYS, SLOTS), dtype=np.float32)
    for day in range(DAYS):  # a day at a time: no float64 temporaries of the whole month to inflate the peak
        noise = rng.lognormal(0, 0.2, (meters, SLOTS)).astype(np.float32)
        use[:, day] = np.where(rng.random((meters, SLOTS)) < 0.01, np.nan, base[:, None] * shape[None, :] * noise)
    # Laid out by kind (water meters first), as analytics lays out its arrays: a kind is a view, not a copy.
    return Fleet(use, np.arange(meters) < meters // 3, np.arange(meters) // 5)


def rules(f: dict[str, np.ndarray], now: float) -> dict[str, int]:
    """The rules on the features: the same calls whatever computed the features."""
    found = {}
    is_silent, _ = silent(f["last_ts"], np.full(len(f["last_ts"]), SLOT_S), now, factor=4.0, min_silence_s=6 * 3600,
                          default_interval_s=SLOT_S, window_start=now - DAYS * DAY)
    found["silent"] = int(is_silent.sum())
    leaking, _, _ = leak(f["night_flow"], np.full(len(f["night_flow"]), 0.5), 3)
    found["leak"] = int(leaking.sum())
    flow, _ = latest_hour(f["hourly_min"], f["hourly_count"], min_readings=3)
    bursting, _ = burst(flow, f["p95"], factor=3.0, floor_m3h=1.0)
    found["burst"] = int(bursting.sum())
    code = meter_fault(f["recent_use"], f["recent_count"], f["usual_daily"], f["neighbours_moving"],
                       np.zeros(len(f["recent_use"])), np.zeros(len(f["recent_use"])), min_backwards=2, min_count=48)
    found["meter_fault"] = int((code > 0).sum())
    found["overuse"] = int((f["month_by_institution"] > np.median(f["month_by_institution"]) * 3).sum())
    return found


def _quarters(a: np.ndarray) -> tuple[np.ndarray, ...]:
    """The four quarter-hours of every hour as strided views: elementwise work on four large arrays is
    several times faster than a reduction along an axis of length 4 (profiled)."""
    return tuple(a[:, :, q::4] for q in range(4))


def features_numpy(fl: Fleet, t0: float) -> dict[str, np.ndarray]:
    use = fl.use
    n, nw = len(use), int(fl.water.sum())
    assert fl.water[:nw].all(), "water meters first"
    reported = ~np.isnan(use)
    # last reading: almost every meter reported in the last slot; search only the others
    flat = reported.reshape(n, -1)
    last = np.full(n, flat.shape[1] - 1)
    late = np.flatnonzero(~flat[:, -1])
    last[late] = flat.shape[1] - 1 - np.argmax(flat[late, ::-1], axis=1)
    last_ts = np.where(flat.any(axis=1), t0 + SLOT_S * last, np.nan)
    water = use[:nw]  # a view
    night = np.fmin.reduce(water[:, :, NIGHT], axis=2) * 4  # fmin skips NaN; all NaN stays NaN
    q = _quarters(water)
    r = _quarters(reported[:nw])
    hourly_min = np.fmin(np.fmin(q[0], q[1]), np.fmin(q[2], q[3])).reshape(nw, -1) * 4
    hourly_count = (r[0].astype(np.int8) + r[1] + r[2] + r[3]).reshape(nw, -1)
    hourly_sum = (np.nan_to_num(q[0]) + np.nan_to_num(q[1]) + np.nan_to_num(q[2]) + np.nan_to_num(q[3]))
    hourly_sum = hourly_sum.reshape(nw, -1)
    k = int(0.95 * (hourly_sum.shape[1] - 1))
    p95 = np.partition(hourly_sum, k, axis=1)[:, k]
    daily = np.add.reduce(use, axis=2, where=reported, initial=0.0)
    counts = np.count_nonzero(reported[:, -1], axis=1)
    moving = daily[:, -1] > 0
    moving_in = np.bincount(fl.institution, weights=moving)
    return {"last_ts": last_ts, "night_flow": night, "hourly_min": hourly_min, "hourly_count": hourly_count,
            "p95": p95, "recent_use": daily[:, -1], "recent_count": counts,
            "usual_daily": np.median(daily, axis=1), "neighbours_moving": (moving_in[fl.institution] - moving) > 0,
            "month_by_institution": np.bincount(fl.institution, weights=daily.sum(axis=1))}


def long_table(fl: Fleet):
    import pandas as pd

    n = len(fl.use)
    meter = np.repeat(np.arange(n, dtype=np.int32), DAYS * SLOTS)
    return pd.DataFrame({
        "meter": meter, "day": np.tile(np.repeat(np.arange(DAYS, dtype=np.int16), SLOTS), n),
        "slot": np.tile(np.arange(SLOTS, dtype=np.int16), n * DAYS), "use": fl.use.reshape(-1),
        "institution": fl.institution[meter], "water": fl.water[meter]})


def features_pandas(df, fl: Fleet, t0: float) -> dict[str, np.ndarray]:
    n = len(fl.use)
    meters = np.arange(n)
    ok = df[df["use"].notna()]
    last_ts = (t0 + SLOT_S * (ok["day"].astype(np.int64) * SLOTS + ok["slot"])).groupby(ok["meter"]).max()
    water = df[df["water"]]
    w_meters = np.flatnonzero(fl.water)
    night = water[(water["slot"] >= NIGHT.start) & (water["slot"] < NIGHT.stop)]
    night_flow = night.groupby(["meter", "day"])["use"].min().unstack().reindex(w_meters) * 4
    hour = water.assign(hour=water["day"].astype(np.int32) * 24 + water["slot"] // 4)
    hourly = hour.groupby(["meter", "hour"])["use"].agg(["min", "count", "sum"])
    p95 = hourly["sum"].groupby(level="meter").quantile(0.95).reindex(w_meters)
    daily = df.groupby(["meter", "day"])["use"].agg(["sum", "count"])
    day_sum = daily["sum"].unstack().reindex(meters)
    day_count = daily["count"].unstack().reindex(meters)
    moving = day_sum.iloc[:, -1] > 0
    moving_in = moving.groupby(fl.institution).transform("sum")
    month = df.groupby("institution")["use"].sum()
    return {"last_ts": last_ts.reindex(meters).to_numpy(float), "night_flow": night_flow.to_numpy(float),
            "hourly_min": (hourly["min"].unstack().reindex(w_meters) * 4).to_numpy(float),
            "hourly_count": hourly["count"].unstack().reindex(w_meters).fillna(0).to_numpy(),
            "p95": p95.to_numpy(float), "recent_use": day_sum.iloc[:, -1].to_numpy(float),
            "recent_count": day_count.iloc[:, -1].to_numpy(float),
            "usual_daily": day_sum.median(axis=1).to_numpy(float),
            "neighbours_moving": ((moving_in - moving) > 0).to_numpy(), "month_by_institution": month.to_numpy(float)}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def one(variant: str, meters: int) -> dict[str, float]:
    """Run one variant in this process: seconds, found alerts, and peak memory above the input."""
    fl = fleet(meters)
    t0, now = 1_790_000_000.0, 1_790_000_000.0 + DAYS * DAY
    df = long_table(fl) if variant == "pandas" else None
    baseline = _peak_mb()
    started = time.perf_counter()
    if variant == "floor":
        float(np.add.reduce(fl.use, axis=None))
        found: dict[str, int] = {}
    else:
        f = features_numpy(fl, t0) if variant == "numpy" else features_pandas(df, fl, t0)
        found = rules(f, now)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "extra_mb": _peak_mb() - baseline, "input_mb": fl.use.nbytes / 2**20, **found}


def measure(meters: int) -> dict[str, dict[str, float]]:
    out = {}
    for variant in ("floor", "numpy", "pandas"):
        proc = subprocess.run([sys.executable, "-m", "benchmarks.analytics_speed", "--meters", str(meters),
                               "--variant", variant], capture_output=True, text=True, check=True)
        out[variant] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def report(r: dict[str, dict[str, float]], meters: int) -> str:
    floor, num, pd_ = r["floor"], r["numpy"], r["pandas"]
    rules_ = [k for k in num if k not in ("seconds", "extra_mb", "input_mb")]
    same = all(num[k] == pd_[k] for k in rules_)
    return (f"{meters:,} meters x {DAYS} days x {SLOTS} readings in memory ({num['input_mb']:.0f} MB float32)\n\n"
            "| variant | seconds | peak memory above the input |\n|---|---:|---:|\n"
            f"| floor: one sweep of the input | {floor['seconds']:.3f} | {floor['extra_mb']:.0f} MB |\n"
            f"| meterwatch: numpy features + rules | {num['seconds']:.3f} | {num['extra_mb']:.0f} MB |\n"
            f"| pandas groupby features + the same rules | {pd_['seconds']:.3f} | {pd_['extra_mb']:.0f} MB |\n\n"
            f"pandas / numpy = {pd_['seconds'] / num['seconds']:.1f} (target >= 5); numpy / floor = "
            f"{num['seconds'] / floor['seconds']:.1f} (target <= 3). Alerts found, numpy: "
            + ", ".join(f"{k} {int(num[k])}" for k in rules_)
            + f"; pandas {'the same' if same else 'DIFFERENT: ' + str({k: int(pd_[k]) for k in rules_})}")


async def run(meters: int = 25_000) -> str:
    return report(measure(meters), meters)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=25_000)
    parser.add_argument("--variant", choices=["floor", "numpy", "pandas"])
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(one(args.variant, args.meters)))
    else:
        print(report(measure(args.meters), args.meters))


if __name__ == "__main__":
    main()
