"""``sorting``: garbage sorting below target, or weighings with cards nobody issued."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from analytics import inputs
from analytics.rules.base import Context, Rule, RuleResult
from meterwatch.localtime import DAY


class SortingSettings(BaseModel):
    window_days: float = Field(14.0, gt=0, description="window of the sorting rule")
    target_share: float = Field(0.10, ge=0, le=1, description="recyclable share of the weight (a policy)")
    min_kg: float = Field(20.0, ge=0, description="no verdict on less weighed garbage")
    min_weighings: int = Field(40, ge=1, description="no verdict on fewer weighings (sampling noise)")
    unknown_min: int = Field(1, ge=1, description="weighings with unknown cards that raise an alert")


def wilson_upper(successes: np.ndarray, trials: np.ndarray, z: float = 1.96) -> np.ndarray:
    """Upper bound of the Wilson score interval for a proportion (NaN without trials)."""
    with np.errstate(all="ignore"):
        p = successes / trials
        centre = p + z * z / (2 * trials)
        spread = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
        return np.where(trials > 0, (centre + spread) / (1 + z * z / trials), np.nan)


def low_recycling(recyclable_kg: np.ndarray, total_kg: np.ndarray, recyclable_weighings: np.ndarray,
                  weighings: np.ndarray, *, target_share: float, min_total_kg: float, min_weighings: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per institution: (below target, recyclable share of the weight).

    Below target means the weight share is, and so is the 95% upper bound
    of the share of recyclable bins: a fortnight of bad luck in a healthy
    institution (an hourly evaluation sees many fortnights) is not an
    alert; an institution that weighs no recyclables for 40 bins is.
    """
    with np.errstate(all="ignore"):
        share = np.where(total_kg > 0, recyclable_kg / total_kg, np.nan)
    enough = (total_kg >= min_total_kg) & (weighings >= min_weighings)
    sure = wilson_upper(recyclable_weighings, weighings) < target_share
    return enough & (share < target_share) & sure, share


def unknown_cards(unknown_count: np.ndarray, *, min_count: int) -> np.ndarray:
    return unknown_count >= min_count


async def evaluate(ctx: Context[SortingSettings]) -> RuleResult:
    cfg, at, registry = ctx.settings, ctx.at, ctx.registry
    scales = sorted(registry.devices_of("scale"), key=lambda d: d.id)
    institutions = sorted({s.institution for s in scales})
    start = int(at - cfg.window_days * DAY)
    recyclable, total, recyclable_n, weighings, unknown = await inputs.garbage(ctx.store, institutions, scales,
                                                                                start, at)
    low, share = low_recycling(recyclable, total, recyclable_n, weighings, target_share=cfg.target_share,
                               min_total_kg=cfg.min_kg, min_weighings=cfg.min_weighings)
    findings = []
    for i in np.flatnonzero(low):
        inst = registry.institutions[institutions[i]]
        findings.append(ctx.finding(
            inst.id, inst.id, start, round(float(share[i]), 3), "share",
            f"{inst.name} 近 {cfg.window_days:g} 天可回收物占比 {share[i]:.0%}，低于目标 {cfg.target_share:.0%}",
            f"{inst.id}: recyclables {share[i]:.0%} of {total[i]:.0f} kg weighed in {cfg.window_days:g} days, "
            f"target {cfg.target_share:.0%}"))
    for i in np.flatnonzero(unknown_cards(unknown, min_count=cfg.unknown_min)):
        s = scales[i]
        findings.append(ctx.finding(
            s.institution, s.id, start, float(unknown[i]), "weighings",
            f"{registry.institutions[s.institution].name} 垃圾秤 {s.id} 有 {int(unknown[i])} 次称重使用了未登记的卡",
            f"scale {s.id} of {s.institution}: {int(unknown[i])} weighings with cards not in the registry"))
    return RuleResult(findings, set(institutions) | {s.id for s in scales})


RULE = Rule("sorting", "分类不达标", "Sorting", SortingSettings, evaluate, severity="info")
