"""One evaluation of the rules at a given time: gather, evaluate, apply lifecycle, write, notify."""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from analytics.alerts import AlertBook
from analytics.findings import Finding
from analytics.inputs import meter_activity
from analytics.notifiers.base import Notifier
from analytics.rules.silent import silent
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import AlertPoint, Batch, Store

log = logging.getLogger(__name__)
KIND_CN = {"water": "水", "electricity": "电", "heat": "热"}


@dataclass
class Evaluation:
    at: int
    events: list[AlertPoint] = field(default_factory=list)
    open_by_rule: Counter[str] = field(default_factory=Counter)


def _local(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M")


async def silent_findings(store: Store, registry: Registry, cfg: AnalyticsSettings, at: int) -> tuple[list[Finding], set[str]]:
    start = int(at - cfg.lookback_days * 86400)
    act = await meter_activity(store, registry, start, at)
    mask, silence = silent(act.last_ts, act.usual_interval_s, at, factor=cfg.silent_factor,
                           min_silence_s=cfg.silent_min_s, default_interval_s=cfg.silent_default_interval_s,
                           window_start=start)
    findings = []
    for i in np.flatnonzero(mask):
        d = act.devices[i]
        inst = registry.institutions[d.institution]
        hours = float(silence[i]) / 3600
        since = int(at - silence[i])
        findings.append(Finding(
            "silent", d.institution, d.id, since, round(hours, 2), "h",
            "critical" if hours > 72 else "warning",
            f"{inst.name} 的{KIND_CN.get(d.kind, '')}表 {d.id} 已 {hours:.1f} 小时无数据（最后读数 {_local(since)}）",
            f"{d.kind} meter {d.id} of {d.institution} has sent nothing for {hours:.1f} h (last reading {_local(since)})",
        ))
    return findings, {d.id for d in act.devices}


async def evaluate(store: Store, registry: Registry, cfg: AnalyticsSettings, book: AlertBook, at: int,
                   notifiers: list[Notifier]) -> Evaluation:
    result = Evaluation(at)
    findings, scope = await silent_findings(store, registry, cfg, at)
    result.events += book.apply("silent", findings, scope, at)
    if result.events:
        await store.write(Batch(alerts=result.events))
        for notifier in notifiers:
            try:
                await notifier.send(result.events)
            except Exception as exc:  # a notifier outage must not lose the evaluation's state
                log.error("notifier failed", extra={"notifier": type(notifier).__name__, "error": repr(exc)[:300]})
    for e in result.events:
        log.info("alert", extra={"rule": e.rule, "state": e.state, "institution": e.institution,
                                 "device": e.device, "value": e.value})
    result.open_by_rule = Counter(a.rule for a in book.alerts.values())
    return result
