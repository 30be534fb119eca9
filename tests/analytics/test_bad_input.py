"""Missing intervals, no consumption, one reading, no quota, zero occupants or area: no crash,
a reason in the output, and the rest of the province still evaluated."""

from __future__ import annotations

from analytics.alerts import AlertBook
from analytics.report import statistics
from analytics.runner import evaluate
from meterwatch.registry import Device, Institution, Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import Batch, ReadingPoint, open_store

AT = 1_767_196_800 + 40 * 86400


def reading(device, inst, ts, register, consumption=None, interval=None):
    return ReadingPoint(device, inst, "yinchuan", "office", "water", ts, register, consumption, interval)


async def test_odd_data_gives_reasons_not_crashes(tmp_path):
    institutions = {
        "ok": Institution("ok", "正常单位", "yinchuan", "office", "bureau", 1000.0, 50),
        "empty": Institution("empty", "无人单位", "yinchuan", "office", "bureau", 0.0, 0),
        "venue": Institution("venue", "场馆", "yinchuan", "venue", "stadium", 5000.0, 20),
    }
    devices = {
        "ok-w1": Device("ok-w1", "ok", "water", "m3", 1.0, ""),
        "empty-w1": Device("empty-w1", "empty", "water", "m3", 1.0, ""),
        "venue-w1": Device("venue-w1", "venue", "water", "m3", 1.0, ""),
        "never-w1": Device("never-w1", "ok", "water", "m3", 1.0, ""),
    }
    quotas = {"type": {"office": {"water": {"per": "capita", "constraint": 20, "guide": 14}}}}
    registry = Registry(institutions, devices, {}, quotas)
    store = open_store(f"duckdb://{tmp_path / 's.duckdb'}")
    await store.open()
    rows = [reading("ok-w1", "ok", AT - 86400 * 30 + 900 * k, 10 + 0.01 * k, 0.01, 900) for k in range(0, 2880, 7)]
    rows += [reading("empty-w1", "empty", AT - 3600, 5.0)]  # one reading, no consumption
    rows += [reading("venue-w1", "venue", AT - 86400 * 3 + 900 * k, 1.0, None, None) for k in range(50)]  # gaps
    await store.write(Batch(readings=rows))
    result = await evaluate(store, registry, AnalyticsSettings(), AlertBook(), AT, [])
    points, lines = await statistics(store, registry, AT)
    await store.close()
    assert result.failed == {}
    assert any("no water quota for type 'venue'" in n for n in result.notes["overuse"])
    assert any("per-capita quota but the registry gives no occupants" in n for n in result.notes["overuse"])
    silent = {e.device for e in result.events if e.rule == "silent"}
    assert "never-w1" in silent and "ok-w1" not in silent  # never reported: silent; the rest judged normally
    by = {(p.institution, p.indicator): p for p in points}
    ok = by[("ok", "water")]
    assert ok.quota_constraint == 20 * 50 and ok.quota_status in ("guide", "between", "over")
    assert 0 < ok.quota_prorated < ok.quota_constraint and ok.projected > ok.use
    assert by[("venue", "water")].quota_status is None  # no quota for venues: no standing, no crash
    flags = {(p.institution, p.indicator): p.flag for p in points}
    assert flags[("empty", "water")] == "registry gives no occupants or floor area"
    assert any("implausible" in line for line in lines)
