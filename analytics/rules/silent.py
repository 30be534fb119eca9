"""``silent``: a device that stopped reporting.

NB-IoT meters read every 15 minutes but may upload only every few hours,
so "late" is measured against the larger of a multiple of the device's own
usual interval and a floor that covers batched uploads.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from analytics import inputs
from analytics.rules.base import KIND_CN, Context, Rule, RuleResult
from meterwatch.localtime import DAY, local_text


class SilentSettings(BaseModel):
    factor: float = Field(4.0, gt=1, description="silent after this many usual intervals")
    min_s: float = Field(6 * 3600.0, gt=0, description="never silent before this long: NB-IoT meters upload every 1-4 h")


def silent(last_ts: np.ndarray, usual_interval_s: np.ndarray, now: float, *, factor: float,
           min_silence_s: float, default_interval_s: float, window_start: float) -> tuple[np.ndarray, np.ndarray]:
    """Per device: (is_silent, seconds since the last reading).

    ``last_ts`` is NaN for a device with no reading in the window; it counts
    as silent since ``window_start``.  Readings stamped after ``now`` (clock
    skew) count as fresh.
    """
    last = np.where(np.isnan(last_ts), window_start, last_ts)
    interval = np.where(np.isfinite(usual_interval_s) & (usual_interval_s > 0), usual_interval_s, default_interval_s)
    silence = np.maximum(now - last, 0.0)
    threshold = np.maximum(factor * interval, min_silence_s)
    return silence > threshold, silence


async def evaluate(ctx: Context[SilentSettings]) -> RuleResult:
    cfg, at, registry = ctx.settings, ctx.at, ctx.registry
    start = int(at - ctx.analytics.lookback_days * DAY)
    act = await inputs.meter_activity(ctx.store, registry, start, at, fresh_s=cfg.min_s)  # fresher: never silent
    mask, silence = silent(act.last_ts, act.usual_interval_s, at, factor=cfg.factor, min_silence_s=cfg.min_s,
                           default_interval_s=ctx.analytics.default_interval_s, window_start=start)
    findings = []
    for i in np.flatnonzero(mask):
        d = act.devices[i]
        name = registry.institutions[d.institution].name
        hours = float(silence[i]) / 3600
        since = int(at - silence[i])
        findings.append(ctx.finding(
            d.institution, d.id, since, round(hours, 2), "h",
            f"{name} 的{KIND_CN.get(d.kind, '')}表 {d.id} 已 {hours:.1f} 小时无数据（最后读数 {local_text(since)}）",
            f"{d.kind} meter {d.id} of {d.institution} has sent nothing for {hours:.1f} h "
            f"(last reading {local_text(since)})", severity="critical" if hours > 72 else None))
    return RuleResult(findings, {d.id for d in act.devices})


RULE = Rule("silent", "静默", "Silent", SilentSettings, evaluate)
