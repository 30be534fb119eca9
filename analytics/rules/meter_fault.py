"""``meter_fault``: a meter that cannot be right.

- frozen: its register has not moved for days while it usually moves every
  day and the institution's other meters are moving (so the building is in use);
- backwards: readings below earlier ones that are not a rollover or a
  replacement (the collector flags them ``bad_reading``);
- jump: a rise no building can consume (the collector flags it ``jump``).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from analytics import inputs
from analytics.rules.base import KIND_CN, Context, Rule, RuleResult
from meterwatch.localtime import DAY

FROZEN, BACKWARDS, JUMP = 1, 2, 3
KINDS = {FROZEN: "frozen", BACKWARDS: "backwards", JUMP: "jump"}
KINDS_CN = {FROZEN: "读数停滞（建筑内其他表在走字）", BACKWARDS: "读数倒走", JUMP: "读数不可能地跳变"}


class MeterFaultSettings(BaseModel):
    frozen_days: float = Field(3.0, gt=0, description="register unchanged this long while the building is in use")
    frozen_baseline_days: float = Field(30.0, gt=0, description="how the meter usually behaves: days before that")
    frozen_min_readings_per_day: float = Field(12.0, ge=0, description="a frozen meter still reports; "
                                                                      "a silent one is the silent rule's")
    backwards_min: int = Field(2, ge=1, description="bad (lower) readings in a day that make a fault")


def still(recent_use: np.ndarray, recent_count: np.ndarray, min_count: float) -> np.ndarray:
    """Per device: reporting (at least ``min_count`` readings) without moving: what a frozen register does."""
    return (recent_count >= max(min_count, 1)) & (np.nan_to_num(recent_use) <= 0)


def meter_fault(recent_use: np.ndarray, recent_count: np.ndarray, usual_daily_use: np.ndarray,
                neighbours_moving: np.ndarray, bad_readings: np.ndarray, jumps: np.ndarray, *,
                min_backwards: int, min_count: float) -> np.ndarray:
    """Per device: 0 (fine) or FROZEN / BACKWARDS / JUMP (the first that applies, worst first).

    A frozen register keeps reporting: a meter with few readings in the
    window has gone silent, which is the silent rule's business.
    """
    frozen = still(recent_use, recent_count, min_count) & (usual_daily_use > 0) & neighbours_moving
    code = np.zeros(len(recent_use), dtype=np.int64)
    code = np.where(frozen, FROZEN, code)
    code = np.where(bad_readings >= min_backwards, BACKWARDS, code)
    return np.where(jumps >= 1, JUMP, code)


async def evaluate(ctx: Context[MeterFaultSettings]) -> RuleResult:
    cfg, at, store = ctx.settings, ctx.at, ctx.store
    devices = inputs.meters(ctx.registry)
    recent_start = int(at - cfg.frozen_days * DAY)
    use, count = await inputs.use_and_count(store, devices, recent_start, at)
    # Does it usually move?  Its 90th-percentile day over a month before, so that a meter frozen for a
    # week is still compared with the weeks when it worked.
    min_count = cfg.frozen_min_readings_per_day * cfg.frozen_days
    usual = await inputs.daily_use(store, devices, int(recent_start - cfg.frozen_baseline_days * DAY), recent_start,
                                   percentile=90, only=still(use, count, min_count))  # only these can be frozen
    inst_use: dict[str, float] = {}
    for d, u in zip(devices, np.nan_to_num(use), strict=True):
        inst_use[d.institution] = inst_use.get(d.institution, 0.0) + max(u, 0.0)
    moving = np.array([inst_use[d.institution] - max(u, 0.0) > 0
                       for d, u in zip(devices, np.nan_to_num(use), strict=True)])
    bad = await inputs.flag_counts(store, devices, at - DAY, at, "bad_reading")
    jumps = await inputs.flag_counts(store, devices, at - DAY, at, "jump")
    code = meter_fault(use, count, usual, moving, bad, jumps, min_backwards=cfg.backwards_min,
                       min_count=min_count)
    findings = []
    for i in np.flatnonzero(code):
        d, what = devices[i], int(code[i])
        name = ctx.registry.institutions[d.institution].name
        seen = {FROZEN: cfg.frozen_days, BACKWARDS: float(bad[i]), JUMP: float(jumps[i])}[what]
        findings.append(ctx.finding(
            d.institution, d.id, recent_start if what == FROZEN else at - DAY, seen,
            "d" if what == FROZEN else "readings",
            f"{name} 的{KIND_CN.get(d.kind, '')}表 {d.id} {KINDS_CN[what]}，请检查表计",
            f"{d.kind} meter {d.id} of {d.institution}: {KINDS[what]} register; please check the meter"))
    return RuleResult(findings, {d.id for d in devices})


RULE = Rule("meter_fault", "表计故障", "Meter fault", MeterFaultSettings, evaluate)
