"""``overuse``: an institution heading over its quota's constraint this year.

Year-to-date use is projected along the type's seasonal profile (last
year's province data); the arithmetic is in ``analytics.quota``, shared
with the officers' statistics and the budget.  The alert says when the
constraint will be crossed.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from pydantic import BaseModel, Field

from analytics import inputs
from analytics.quota import INDICATOR_CN, INDICATORS, QuotaTable, day_to_date, energy_kgce, standing
from analytics.rules.base import Context, Finding, Rule, RuleResult
from meterwatch.localtime import DAY, local_year


class OveruseSettings(BaseModel):
    min_elapsed_share: float = Field(0.04, ge=0, le=1, description="no projection before this share of the year")


async def evaluate(ctx: Context[OveruseSettings]) -> RuleResult:
    registry, at = ctx.registry, ctx.at
    table = QuotaTable(registry.quotas)
    institutions = sorted(registry.institutions.values(), key=lambda i: i.id)
    ids = [i.id for i in institutions]
    year, day_of_year, jan1 = local_year(at)
    ytd = await inputs.year_to_date(ctx.store, ids, jan1, at)
    profiles = await inputs.type_profiles(ctx.store, jan1 - 365 * DAY, jan1, min_days=ctx.analytics.profile_min_days)
    findings: list[Finding] = []
    notes: Counter[str] = Counter()
    for indicator, unit in INDICATORS.items():
        use = (energy_kgce(ytd["electricity"], ytd["heat"], table.conversion) if indicator == "energy"
               else np.nan_to_num(ytd[indicator]))
        st = standing(table, institutions, indicator, use, profiles, day_of_year)
        notes.update(why.split(": ", 1)[-1].replace(f"{inst} ", "") for inst, why in st.missing)
        for k in np.flatnonzero((st.status == "over") & (st.share >= ctx.settings.min_elapsed_share)):
            inst = institutions[k]
            when = day_to_date(year, int(st.crossing[k])).isoformat() if st.crossing[k] >= 0 else "-"
            ratio = st.projected[k] / st.constraint[k]
            findings.append(ctx.finding(
                inst.id, f"{inst.id}.{indicator}", jan1, round(float(ratio), 3), "of constraint",
                f"{inst.name} {INDICATOR_CN[indicator]}预计全年 {st.projected[k]:,.0f} {unit}，为约束值的 {ratio:.0%}"
                f"（已用 {use[k]:,.0f}），预计 {when} 超过约束值",
                f"{inst.id} {indicator}: heading for {st.projected[k]:,.0f} {unit} this year, {ratio:.0%} of the "
                f"constraint ({use[k]:,.0f} used so far); expected to cross it on {when}",
                severity="critical" if use[k] > st.constraint[k] else None))
    scope = {f"{i.id}.{ind}" for i in institutions for ind in INDICATORS}
    return RuleResult(findings, scope, [f"{n} institutions without a usable quota ({why})" for why, n in notes.items()])


RULE = Rule("overuse", "超定额", "Overuse", OveruseSettings, evaluate)
