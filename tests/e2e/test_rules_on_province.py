"""Every rule finds what the simulator injected, on a backfilled province, in both stores."""

from __future__ import annotations

from dataclasses import replace

import pytest

from analytics.alerts import AlertBook
from analytics.rules import configure
from analytics.runner import evaluate
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import open_store
from simulators.backfill import backfill
from simulators.faults import FaultRates
from simulators.province import generate_province

END = 1_767_196_800 + 10 * 86400 + 9 * 3600  # 2026-01-11 09:00 China time
RATES = FaultRates(leak=0.05, burst=0.0, silent=0.03, frozen=0.02, backwards=0.01, rollover=0.01,
                   replacement=0.01, mis_sorted=0.1, unknown_card=0.05)


@pytest.fixture(scope="module")
def province():
    return generate_province(150, seed=21)


async def test_rules_against_ground_truth(store_url, province):
    store = open_store(store_url)
    await store.open()
    result = await backfill(store, province, END - 15 * 86400, END, seed=21, rates=RATES)
    registry = Registry({i.id: i for i in province.institutions}, {d.id: d for d in province.devices},
                        {c.card: c for c in province.cards})
    cfg = AnalyticsSettings()
    evaluation = await evaluate(store, registry, cfg, AlertBook(), END, [])
    await store.close()
    assert evaluation.failed == {}
    found: dict[str, set[str]] = {}
    for e in evaluation.events:
        found.setdefault(e.rule, set()).add(e.device)
    labels = result.labels or []

    def expected(fault: str, min_age_s: float = 0) -> set[str]:
        return {lb.device or lb.institution for lb in labels if lb.fault == fault and END - lb.start >= min_age_s}

    own = configure(cfg)
    leaks = expected("leak", (own["leak"].nights + 1) * 86400)
    silent = expected("silent", own["silent"].min_s)
    faults = expected("frozen", (own["meter_fault"].frozen_days + 1) * 86400) | expected("backwards")
    unknown = {lb.device for lb in labels if lb.fault == "unknown_card" and END - lb.start >= 2 * 86400}
    mis_sorted = {lb.institution for lb in labels if lb.fault == "mis_sorted"}
    report = {}
    for rule, truth in (("leak", leaks), ("silent", silent), ("meter_fault", faults), ("sorting", mis_sorted | unknown)):
        got = found.get(rule, set())
        recall = len(got & truth) / len(truth) if truth else 1.0
        precision = len(got & truth) / len(got) if got else 1.0
        report[rule] = (len(truth), len(got), round(recall, 2), round(precision, 2))
    print("\nrule: (injected, alerted, recall, precision)", report)
    for rule, (truth, got, recall, precision) in report.items():
        assert truth > 0, rule
        assert recall >= 0.8 and precision >= 0.8, (rule, report[rule])


class EveryDevice:
    """The same store, with every device asked every aggregate: the rules' narrowing to the devices in doubt
    (``Aggregate.devices``, ``device_activity(devices=)``) taken away."""

    def __init__(self, store) -> None:
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def aggregate(self, agg):
        return await self._store.aggregate(replace(agg, devices=None))

    async def device_activity(self, start, end, devices=None):
        return await self._store.device_activity(start, end)


async def test_asking_only_the_devices_in_doubt_changes_no_alert(store_url, province):
    """Silent (the median interval), burst (the usual peak), leak (earlier nights) and meter_fault (a month of
    days) ask their costly aggregates only of the devices a first question left in doubt: the alerts are
    exactly those of asking every device.  Rules gathering at the same time (``rules_at_once``) give the
    events of one rule at a time, in the same order."""
    store = open_store(store_url)
    await store.open()
    rates = replace(RATES, burst=0.2)
    labels = (await backfill(store, province, END - 15 * 86400, END, seed=22, rates=rates)).labels or []
    registry = Registry({i.id: i for i in province.institutions}, {d.id: d for d in province.devices},
                        {c.card: c for c in province.cards})
    rules = ["silent", "burst", "leak", "meter_fault"]
    bursting = max(lb.start + 5400 for lb in labels if lb.fault == "burst" and lb.end - lb.start > 7200)
    events = {}
    for name, view, at_once in (("narrowed", store, 4), ("every device", EveryDevice(store), 2),
                                ("one rule at a time", store, 1)):
        events[name] = []
        for at in (END, bursting):  # now, and an hour and a half into a burst
            evaluation = await evaluate(view, registry, AnalyticsSettings(rules_at_once=at_once), AlertBook(), at, [],
                                        rules)
            assert evaluation.failed == {}, name
            # in the book's order: the rules' order, whichever rule finished first
            events[name] += [(at, e.rule, e.device, e.state, e.value, e.since) for e in evaluation.events]
    await store.close()
    assert events["narrowed"] == events["one rule at a time"]
    assert sorted(events["narrowed"]) == sorted(events["every device"])
    assert {e[1] for e in events["narrowed"]} == set(rules)  # every rule raised something: the test can fail
