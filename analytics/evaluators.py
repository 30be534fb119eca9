"""Each rule's evaluator: gather its inputs, run the pure rule, phrase the findings for operators.

An evaluator returns the findings and its scope (every device it looked
at), which the alert lifecycle needs to resolve what is no longer found.
Adding a rule = a pure function in ``analytics.rules`` + an evaluator here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import numpy as np

from analytics import inputs
from analytics.findings import Finding
from analytics.rules.burst import burst
from analytics.rules.leak import leak, leak_threshold
from analytics.rules.meter_fault import KINDS, meter_fault
from analytics.rules.silent import silent
from analytics.rules.sorting import low_recycling, unknown_cards
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import Store

DAY = 86400
KIND_CN = {"water": "水", "electricity": "电", "heat": "热"}
Evaluator = Callable[[Store, Registry, AnalyticsSettings, int], Awaitable[tuple[list[Finding], set[str]]]]


def local_time(ts: float) -> str:
    return datetime.fromtimestamp(ts + 8 * 3600, UTC).strftime("%Y-%m-%d %H:%M")


async def silent_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int
                          ) -> tuple[list[Finding], set[str]]:
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
    return findings, {d.id for d in act.devices}


async def leak_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int
                        ) -> tuple[list[Finding], set[str]]:
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
    return findings, {d.id for d in devices}


async def burst_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int
                         ) -> tuple[list[Finding], set[str]]:
    devices = inputs.meters(registry, frozenset({"water"}))
    window = int(cfg.burst_window_h * 3600)
    recent, count = await inputs.flow(store, devices, at - window, at, "min")
    recent = np.where(count >= cfg.burst_min_readings, recent, np.nan)
    normal, _ = await inputs.flow(store, devices, int(at - cfg.lookback_days * DAY), at - window, "p95")
    hit, ratio = burst(recent, normal, factor=cfg.burst_factor, floor_m3h=cfg.burst_floor_m3h)
    findings = []
    for i in np.flatnonzero(hit):
        d = devices[i]
        name = registry.institutions[d.institution].name
        findings.append(Finding(
            "burst", d.institution, d.id, at - window, round(float(recent[i]), 3), "m3/h",
            "critical" if ratio[i] > 2 * cfg.burst_factor else "warning",
            f"{name} 水表 {d.id} 近 {cfg.burst_window_h:g} 小时流量不低于 {recent[i]:.2f} m³/h，"
            f"为平时高峰的 {ratio[i]:.1f} 倍，疑似爆管或长流水",
            f"water meter {d.id} of {d.institution}: at least {recent[i]:.2f} m3/h for {cfg.burst_window_h:g} h, "
            f"{ratio[i]:.1f}x its usual peak: burst or tap left open"))
    return findings, {d.id for d in devices}


async def meter_fault_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int
                               ) -> tuple[list[Finding], set[str]]:
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
    code = meter_fault(use, count, usual, moving, bad, jumps, min_backwards=cfg.backwards_min)
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
    return findings, {d.id for d in devices}


async def sorting_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int
                           ) -> tuple[list[Finding], set[str]]:
    scales = sorted(registry.devices_of("scale"), key=lambda d: d.id)
    institutions = sorted({s.institution for s in scales})
    start = int(at - cfg.sorting_window_days * DAY)
    recyclable, total, unknown = await inputs.garbage(store, institutions, scales, start, at)
    low, share = low_recycling(recyclable, total, target_share=cfg.sorting_target_share,
                               min_total_kg=cfg.sorting_min_kg)
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
    return findings, set(institutions) | {s.id for s in scales}


EVALUATORS: dict[str, Evaluator] = {
    "silent": silent_findings, "leak": leak_findings, "burst": burst_findings,
    "meter_fault": meter_fault_findings, "sorting": sorting_findings,
}
