"""Overuse on a backfilled province: the institution heading over its quota is warned early."""

from __future__ import annotations

import datetime as dt

from analytics.alerts import AlertBook
from analytics.runner import evaluate
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import open_store
from simulators.backfill import backfill
from simulators.faults import FaultRates
from simulators.province import generate_province

JAN1 = 1_767_196_800  # 2026-01-01 00:00 China time
AT = JAN1 + 45 * 86400


async def test_overuse_warns_before_the_constraint_is_reached(duck_url):
    province = generate_province(20, seed=8)
    store = open_store(duck_url)
    await store.open()
    await backfill(store, province, JAN1, AT, seed=8, rates=FaultRates(leak=0, burst=0, silent=0, frozen=0,
                                                                       backwards=0, rollover=0, replacement=0))
    target = next(i for i in province.institutions if i.type == "office")
    quotas = {"type": {"office": {"water": {"per": "capita", "constraint": 1000.0, "guide": 800.0}}},
              "institution": {target.id: {"water": {"per": "capita", "constraint": 13.0, "guide": 9.0}}}}
    registry = Registry({i.id: i for i in province.institutions}, {d.id: d for d in province.devices},
                        {c.card: c for c in province.cards}, quotas)
    result = await evaluate(store, registry, AnalyticsSettings(), AlertBook(), AT, [], rules=["overuse"])
    await store.close()
    alerts = [e for e in result.events if e.rule == "overuse"]
    assert [a.device for a in alerts] == [f"{target.id}.water"]
    alert = alerts[0]
    print("\n" + alert.message + "\n" + alert.message_en)
    assert alert.value > 1 and alert.severity == "warning"  # heading over, not over yet
    crossing = dt.date.fromisoformat(alert.message_en.rsplit(" on ", 1)[1])
    assert dt.date(2026, 2, 15) < crossing < dt.date(2026, 12, 31)  # the warning comes before the fact
    assert any("without a usable quota" in note for note in result.notes["overuse"])  # other types: reasons
