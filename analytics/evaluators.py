"""Each rule's evaluator: gather its inputs, run the pure rule, phrase the findings for operators.

An evaluator returns the findings and its scope (every device it looked
at), which the alert lifecycle needs to resolve what is no longer found.
Adding a rule = a pure function in ``analytics.rules`` + an evaluator here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from analytics import inputs
from analytics.findings import Finding
from analytics.rules.burst import burst, latest_hour
from analytics.rules.leak import leak, leak_threshold
from analytics.rules.meter_fault import KINDS, meter_fault
from analytics.rules.silent import silent
from analytics.quota import INDICATOR_CN, INDICATORS, QuotaTable, day_to_date, energy_kgce, standing
from analytics.rules.sorting import low_recycling, unknown_cards
from meterwatch.const import LOCAL_UTC_OFFSET_S
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import Store

DAY = 86400
KIND_CN = {"water": "水", "electricity": "电", "heat": "热"}
@dataclass
class RuleResult:
    findings: list[Finding]
    scope: set[str]  # every device (or institution key) the rule looked at
    notes: list[str] = field(default_factory=list)  # what could not be judged, and why


Evaluator = Callable[[Store, Registry, AnalyticsSettings, int], Awaitable[RuleResult]]


def local_year(at: int) -> tuple[int, int, int]:
    """(year, day of year 0-based, Unix time of 1 January 00:00) in China time."""
    local = datetime.fromtimestamp(at + LOCAL_UTC_OFFSET_S, UTC)
    jan1 = int(datetime(local.year, 1, 1, tzinfo=UTC).timestamp()) - LOCAL_UTC_OFFSET_S
    return local.year, (at - jan1) // DAY, jan1


def local_time(ts: float) -> str:
    return datetime.fromtimestamp(ts + LOCAL_UTC_OFFSET_S, UTC).strftime("%Y-%m-%d %H:%M")


async def silent_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int
                          ) -> RuleResult:
    start = int(at - cfg.lookback_days * DAY)
    act = await inputs.meter_activity(store, registry, start, at)
    mask, silence = silent(act.last_ts, act.usual_interval_s, at, factor=cfg.silent_factor,
                           min_silence_s=cfg.silent_min_s, default_interval_s=cfg.silent_default_interval_s,
                           window_start=start)
    findings = []
    for i in np.flatnonzero(mask):
        d = act.devices[i]
        name = registry.institutions[d.institution].name
        hours = float(silence[i]) / 3600
        since = int(at - silence[i])
        findings.append(Finding(
            "silent", d.institution, d.id, since, round(hours, 2), "h", "critical" if hours > 72 else "warning",
            f"{name} 的{KIND_CN.get(d.kind, '')}表 {d.id} 已 {hours:.1f} 小时无数据（最后读数 {local_time(since)}）",
            f"{d.kind} meter {d.id} of {d.institution} has sent nothing for {hours:.1f} h "
            f"(last reading {local_time(since)})"))
    return RuleResult(findings, {d.id for d in act.devices})


async def leak_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int
                        ) -> RuleResult:
    devices = inputs.meters(registry, frozenset({"water"}))
    flows, starts = await inputs.night_flows(store, devices, at, cfg.leak_nights)
    insts = [registry.institutions[d.institution] for d in devices]
    threshold = leak_threshold(np.array([i.occupants for i in insts], dtype=float), floor_m3h=cfg.leak_floor_m3h,
                               per_person_m3h=cfg.leak_per_person_m3h,
                               type_factor=np.array([cfg.leak_type_factor.get(i.type, 1.0) for i in insts]))
    hit, value, streak = leak(flows, threshold, cfg.leak_nights)
    findings = []
    for i in np.flatnonzero(hit):
        d, inst = devices[i], insts[i]
        since = starts[max(0, len(starts) - int(streak[i]))]
        findings.append(Finding(
            "leak", d.institution, d.id, since, round(float(value[i]), 3), "m3/h", "warning",
            f"{inst.name} 水表 {d.id} 连续 {int(streak[i])} 夜最小夜间流量 {value[i]:.3f} m³/h"
            f"（阈值 {threshold[i]:.3f}），疑似漏水",
            f"water meter {d.id} of {d.institution}: minimum night flow {value[i]:.3f} m3/h for "
            f"{int(streak[i])} nights (threshold {threshold[i]:.3f}): probable leak"))
    return RuleResult(findings, {d.id for d in devices})


async def burst_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int
                         ) -> RuleResult:
    devices = inputs.meters(registry, frozenset({"water"}))
    bucket = cfg.burst_sustained_min * 60
    window_start = int(at - cfg.burst_lookback_h * 3600) // bucket * bucket
    flows, counts, hours = await inputs.bucketed_flows(store, devices, window_start, at, bucket)
    recent, hour = latest_hour(flows, counts, min_readings=cfg.burst_min_readings)
    normal, _ = await inputs.flow(store, devices, int(at - cfg.lookback_days * DAY), window_start, "p95")
    hit, ratio = burst(recent, normal, factor=cfg.burst_factor, floor_m3h=cfg.burst_floor_m3h)
    findings = []
    for i in np.flatnonzero(hit):
        d = devices[i]
        name = registry.institutions[d.institution].name
        since = hours[int(hour[i])]
        findings.append(Finding(
            "burst", d.institution, d.id, since, round(float(recent[i]), 3), "m3/h",
            "critical" if ratio[i] > 2 * cfg.burst_factor else "warning",
            f"{name} 水表 {d.id} 自 {local_time(since)} 起 {cfg.burst_sustained_min} 分钟内流量不低于 "
            f"{recent[i]:.2f} m³/h，为平时高峰的 {ratio[i]:.1f} 倍，疑似爆管或长流水",
            f"water meter {d.id} of {d.institution}: at least {recent[i]:.2f} m3/h for {cfg.burst_sustained_min} min "
            f"from {local_time(since)}, {ratio[i]:.1f}x its usual peak: burst or tap left open"))
    return RuleResult(findings, {d.id for d in devices})


async def meter_fault_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int
                               ) -> RuleResult:
    devices = inputs.meters(registry)
    recent_start = int(at - cfg.frozen_days * DAY)
    use, count = await inputs.use_and_count(store, devices, recent_start, at)
    # Does it usually move?  Its 90th-percentile day over a month before, so that a meter frozen for a
    # week is still compared with the weeks when it worked.
    usual = await inputs.daily_use(store, devices, int(recent_start - cfg.frozen_baseline_days * DAY), recent_start,
                                   percentile=90)
    inst_use: dict[str, float] = {}
    for d, u in zip(devices, np.nan_to_num(use), strict=True):
        inst_use[d.institution] = inst_use.get(d.institution, 0.0) + max(u, 0.0)
    moving = np.array([inst_use[d.institution] - max(u, 0.0) > 0
                       for d, u in zip(devices, np.nan_to_num(use), strict=True)])
    bad = await inputs.flag_counts(store, devices, at - DAY, at, "bad_reading")
    jumps = await inputs.flag_counts(store, devices, at - DAY, at, "jump")
    code = meter_fault(use, count, usual, moving, bad, jumps, min_backwards=cfg.backwards_min,
                       min_count=cfg.frozen_min_readings_per_day * cfg.frozen_days)
    cn = {1: "读数停滞（建筑内其他表在走字）", 2: "读数倒走", 3: "读数不可能地跳变"}
    findings = []
    for i in np.flatnonzero(code):
        d, what = devices[i], int(code[i])
        name = registry.institutions[d.institution].name
        seen = {1: cfg.frozen_days, 2: float(bad[i]), 3: float(jumps[i])}[what]
        findings.append(Finding(
            "meter_fault", d.institution, d.id, recent_start if what == 1 else at - DAY, seen,
            {1: "d", 2: "readings", 3: "readings"}[what], "warning",
            f"{name} 的{KIND_CN.get(d.kind, '')}表 {d.id} {cn[what]}，请检查表计",
            f"{d.kind} meter {d.id} of {d.institution}: {KINDS[what]} register; please check the meter"))
    return RuleResult(findings, {d.id for d in devices})


async def sorting_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int
                           ) -> RuleResult:
    scales = sorted(registry.devices_of("scale"), key=lambda d: d.id)
    institutions = sorted({s.institution for s in scales})
    start = int(at - cfg.sorting_window_days * DAY)
    recyclable, total, recyclable_n, weighings, unknown = await inputs.garbage(store, institutions, scales, start, at)
    low, share = low_recycling(recyclable, total, recyclable_n, weighings, target_share=cfg.sorting_target_share,
                               min_total_kg=cfg.sorting_min_kg, min_weighings=cfg.sorting_min_weighings)
    findings = []
    for i in np.flatnonzero(low):
        inst = registry.institutions[institutions[i]]
        findings.append(Finding(
            "sorting", inst.id, inst.id, start, round(float(share[i]), 3), "share", "info",
            f"{inst.name} 近 {cfg.sorting_window_days:g} 天可回收物占比 {share[i]:.0%}，低于目标 "
            f"{cfg.sorting_target_share:.0%}",
            f"{inst.id}: recyclables {share[i]:.0%} of {total[i]:.0f} kg weighed in {cfg.sorting_window_days:g} days, "
            f"target {cfg.sorting_target_share:.0%}"))
    for i in np.flatnonzero(unknown_cards(unknown, min_count=cfg.sorting_unknown_min)):
        s = scales[i]
        findings.append(Finding(
            "sorting", s.institution, s.id, start, float(unknown[i]), "weighings", "info",
            f"{registry.institutions[s.institution].name} 垃圾秤 {s.id} 有 {int(unknown[i])} 次称重使用了未登记的卡",
            f"scale {s.id} of {s.institution}: {int(unknown[i])} weighings with cards not in the registry"))
    return RuleResult(findings, set(institutions) | {s.id for s in scales})


async def overuse_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int) -> RuleResult:
    table = QuotaTable(registry.quotas)
    institutions = sorted(registry.institutions.values(), key=lambda i: i.id)
    ids = [i.id for i in institutions]
    year, day_of_year, jan1 = local_year(at)
    ytd = await inputs.year_to_date(store, ids, jan1, at)
    profiles = await inputs.type_profiles(store, jan1 - 365 * DAY, jan1, min_days=cfg.profile_min_days)
    findings: list[Finding] = []
    notes: Counter[str] = Counter()
    for indicator, unit in INDICATORS.items():
        use = (energy_kgce(ytd["electricity"], ytd["heat"], table.conversion) if indicator == "energy"
               else np.nan_to_num(ytd[indicator]))
        st = standing(table, institutions, indicator, use, profiles, day_of_year)
        notes.update(why.split(": ", 1)[-1].replace(f"{inst} ", "") for inst, why in st.missing)
        for k in np.flatnonzero((st.status == "over") & (st.share >= cfg.overuse_min_elapsed_share)):
            inst = institutions[k]
            when = day_to_date(year, int(st.crossing[k])).isoformat() if st.crossing[k] >= 0 else "-"
            ratio = st.projected[k] / st.constraint[k]
            findings.append(Finding(
                "overuse", inst.id, f"{inst.id}.{indicator}", jan1, round(float(ratio), 3), "of constraint",
                "critical" if use[k] > st.constraint[k] else "warning",
                f"{inst.name} {INDICATOR_CN[indicator]}预计全年 {st.projected[k]:,.0f} {unit}，为约束值的 {ratio:.0%}"
                f"（已用 {use[k]:,.0f}），预计 {when} 超过约束值",
                f"{inst.id} {indicator}: heading for {st.projected[k]:,.0f} {unit} this year, {ratio:.0%} of the "
                f"constraint ({use[k]:,.0f} used so far); expected to cross it on {when}"))
    scope = {f"{i.id}.{ind}" for i in institutions for ind in INDICATORS}
    return RuleResult(findings, scope, [f"{n} institutions without a usable quota ({why})" for why, n in notes.items()])


EVALUATORS: dict[str, Evaluator] = {
    "silent": silent_findings, "leak": leak_findings, "burst": burst_findings,
    "meter_fault": meter_fault_findings, "sorting": sorting_findings, "overuse": overuse_findings,
}
