"""``over_budget``: an institution whose projected year-end cost is above its budget.

The cost so far is what analytics priced day by day (``analytics.costs``,
the ``cost`` measurement); the budget is finance's allocation from
``budgets.csv``, else the expenditure standard (the quota priced with the
year's tariffs); the projection follows each kind's seasonal profile.  The
arithmetic is ``analytics.budget.execution``, shared with ``meterwatch
budget`` and the officers' statistics.  The alert says by how much, and
when the budget is expected to be passed.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, Field

from analytics.budget import execution
from analytics.rules.base import Context, Finding, Rule, RuleResult
from meterwatch.localtime import local_year


class OverBudgetSettings(BaseModel):
    min_elapsed_share: float = Field(0.04, ge=0, le=1, description="no projection before this share of the year")


async def evaluate(ctx: Context[OverBudgetSettings]) -> RuleResult:
    if not ctx.registry.tariffs:
        return RuleResult([], set(), ["no tariffs.toml: nothing is priced, no budget is followed"], skipped=True)
    ex = await execution(ctx.store, ctx.registry, ctx.at, profile_min_days=ctx.analytics.profile_min_days,
                         monthly=False)
    _, day_of_year, jan1 = local_year(ctx.at)
    findings: list[Finding] = []
    elapsed = day_of_year / 365
    for k in np.flatnonzero((ex.status == "over") & (elapsed >= ctx.settings.min_elapsed_share)):
        inst = ex.institutions[k]
        budget, projected, cost = ex.budget["total"][k], ex.projected["total"][k], ex.cost["total"][k]
        crossing = ex.crossing_date(k)
        when = crossing.isoformat() if crossing else "-"
        ratio = projected / budget
        findings.append(ctx.finding(
            inst.id, f"{inst.id}.budget", jan1, round(float(ratio), 3), "of budget",
            f"{inst.name} 预计全年能源费用 ¥{projected:,.0f}，为预算 ¥{budget:,.0f} 的 {ratio:.0%}"
            f"（已支出 ¥{cost:,.0f}），预计 {when} 超出预算，超支约 ¥{projected - budget:,.0f}",
            f"{inst.id}: energy cost heading for ¥{projected:,.0f} this year, {ratio:.0%} of its budget "
            f"¥{budget:,.0f} (¥{cost:,.0f} spent so far); expected to pass it on {when}, "
            f"overrun about ¥{projected - budget:,.0f}",
            severity="critical" if cost > budget else None))
    scope = {f"{i.id}.budget" for i in ex.institutions}
    return RuleResult(findings, scope, ex.notes)


RULE = Rule("over_budget", "超预算", "Over budget", OverBudgetSettings, evaluate)
