"""``burst``: flow far above the device's own normal, sustained (a pipe burst, a tap left open).

Compared with the device's own 95th-percentile flow over the lookback, so
a school's lunchtime peak is normal for the school.  "Sustained" means the
*smallest* flow of the recent window is that high, not one spike.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from analytics import inputs
from analytics.costs import loss_phrase, water_loss_per_day
from analytics.rules.base import Context, Rule, RuleResult
from meterwatch.localtime import DAY, local_text


class BurstSettings(BaseModel):
    factor: float = Field(3.0, gt=1, description="times the device's own 95th-percentile flow")
    floor_m3h: float = Field(0.5, ge=0, description="a burst is at least this many m3/h")
    lookback_h: float = Field(6.0, gt=0, description="how far back to find the device's latest full bucket "
                                                    "(NB-IoT batches arrive late)")
    sustained_min: int = Field(30, ge=15, description="minutes the high flow must last (a bucket)")
    min_readings: int = Field(2, ge=1, description="readings in that bucket for a verdict")


def burst(recent_min_flow: np.ndarray, normal_p95_flow: np.ndarray, *, factor: float,
          floor_m3h: float) -> tuple[np.ndarray, np.ndarray]:
    """Per device: (bursting, how many times its normal peak the recent flow is)."""
    normal = np.where(np.isfinite(normal_p95_flow), np.maximum(normal_p95_flow, floor_m3h / factor), np.nan)
    with np.errstate(all="ignore"):
        ratio = recent_min_flow / normal
    return (ratio > factor) & (recent_min_flow > floor_m3h), ratio


def latest_hour(hourly_min_flow: np.ndarray, hourly_count: np.ndarray, *, min_readings: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per device (rows = devices, columns = hours, oldest first): the minimum flow of its latest hour
    with enough readings, and that hour's column (-1 if none).  NB-IoT meters deliver hours late, so
    "the latest hour the device has told us about" is the honest "now"."""
    full = hourly_count >= min_readings
    has = full.any(axis=1)
    last = np.where(has, full.shape[1] - 1 - np.argmax(full[:, ::-1], axis=1), -1)
    flow = np.where(has, hourly_min_flow[np.arange(len(last)), np.maximum(last, 0)], np.nan)
    return flow, last


async def evaluate(ctx: Context[BurstSettings]) -> RuleResult:
    cfg, at, store = ctx.settings, ctx.at, ctx.store
    devices = inputs.meters(ctx.registry, frozenset({"water"}))
    bucket = cfg.sustained_min * 60
    window_start = int(at - cfg.lookback_h * 3600) // bucket * bucket
    flows, counts, hours = await inputs.bucketed_flows(store, devices, window_start, at, bucket,
                                                       ctx.analytics.default_interval_s)
    recent, hour = latest_hour(flows, counts, min_readings=cfg.min_readings)
    # the usual peak (a percentile over weeks, costly) only where the flow now could be a burst
    normal, _ = await inputs.flow(store, devices, int(at - ctx.analytics.lookback_days * DAY), window_start, "p95",
                                  ctx.analytics.default_interval_s, only=np.nan_to_num(recent) > cfg.floor_m3h)
    hit, ratio = burst(recent, normal, factor=cfg.factor, floor_m3h=cfg.floor_m3h)
    findings = []
    for i in np.flatnonzero(hit):
        d = devices[i]
        name = ctx.registry.institutions[d.institution].name
        since = hours[int(hour[i])]
        cost_cn, cost_en = loss_phrase(water_loss_per_day(ctx.registry, d.institution, float(recent[i]), at))
        findings.append(ctx.finding(
            d.institution, d.id, since, round(float(recent[i]), 3), "m3/h",
            f"{name} 水表 {d.id} 自 {local_text(since)} 起 {cfg.sustained_min} 分钟内流量不低于 "
            f"{recent[i]:.2f} m³/h，为平时高峰的 {ratio[i]:.1f} 倍，疑似爆管或长流水{cost_cn}",
            f"water meter {d.id} of {d.institution}: at least {recent[i]:.2f} m3/h for {cfg.sustained_min} min "
            f"from {local_text(since)}, {ratio[i]:.1f}x its usual peak: burst or tap left open{cost_en}",
            severity="critical" if ratio[i] > 2 * cfg.factor else None))
    return RuleResult(findings, {d.id for d in devices})


RULE = Rule("burst", "爆管", "Burst", BurstSettings, evaluate)
