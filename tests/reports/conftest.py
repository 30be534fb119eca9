"""A small province with hand-chosen figures around October 2026 and October 2025, written to a real store."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import asyncio

import pytest

from meterwatch.localtime import CHINA, midnight_of
from meterwatch.registry import Card, Device, Institution, Registry
from meterwatch.store import AlertPoint, Batch, CostPoint, ReadingPoint, WeighingPoint, open_store
from simulators.province import Province, write_registry

A = Institution("inst-a", "银川市第1中学", "yinchuan", "education", "secondary", 1000.0, 100)
B = Institution("inst-b", "银川市1号政务楼", "yinchuan", "office", "bureau", 500.0, 50)
C = Institution("inst-c", "固原市人民医院", "guyuan", "medical", "hospital", 0.0, 0)  # registry lacks area, people
DEVICES = [Device("a-e", "inst-a", "electricity", "kWh", 1.0, ""), Device("a-w", "inst-a", "water", "m3", 1.0, ""),
           Device("a-h", "inst-a", "heat", "GJ", 1.0, ""), Device("a-s", "inst-a", "scale", "kg", 1.0, ""),
           Device("b-e", "inst-b", "electricity", "kWh", 1.0, ""),
           Device("b-h", "inst-b", "heat", "kWh", 1.0, ""),  # a heat meter counting kWh: 3,600 kWh = 12.96 GJ
           Device("c-w", "inst-c", "water", "m3", 1.0, "")]
CARDS = [Card("R1", "inst-a", "教学楼", "教务处", "保洁员甲", "recyclable"),
         Card("K1", "inst-a", "食堂", "后勤处", "保洁员乙", "kitchen"),
         Card("O1", "inst-a", "教学楼", "教务处", "保洁员甲", "other")]
QUOTAS = {"institution": {"inst-a": {"electricity": {"per": "institution", "constraint": 20000.0, "guide": 15000.0}}}}
DAILY = {  # device -> (use per day in 2026, in 2025)
    "a-e": (100.0, 80.0), "a-w": (10.0, 10.0), "a-h": (2.0, 2.0), "b-e": (50.0, 50.0), "b-h": (3600.0, 3600.0),
    "c-w": (4.0, 1.0)}
MISSING = {"a-w": {date(2026, 10, 10), date(2026, 10, 11), date(2026, 10, 12)}}  # three days without a reading
SILENT_FROM = {"c-w": date(2026, 10, 21)}  # nothing from 21 October 2026 on


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> int:
    return int(datetime(y, m, d, hh, mm, ss, tzinfo=CHINA).timestamp())


def registry() -> Registry:
    return Registry({i.id: i for i in (A, B, C)}, {d.id: d for d in DEVICES}, {c.card: c for c in CARDS}, QUOTAS)


def _reading(dev: Device, ts: int, consumption: float, flag: str | None = None) -> ReadingPoint:
    inst = {i.id: i for i in (A, B, C)}[dev.institution]
    return ReadingPoint(dev.id, inst.id, inst.city, inst.type, dev.kind, ts, 0.0, consumption, 86400, flag)


def readings() -> list[ReadingPoint]:
    out = []
    for first, last, column in ((date(2025, 9, 1), date(2025, 11, 5), 1), (date(2026, 8, 25), date(2026, 11, 5), 0)):
        day = first
        while day <= last:
            for dev in DEVICES:
                if dev.kind == "scale" or day in MISSING.get(dev.id, ()) or day >= SILENT_FROM.get(dev.id, date.max):
                    continue
                flag = "jump" if (dev.id, day) == ("a-e", date(2026, 10, 15)) else None
                out.append(_reading(dev, local(day.year, day.month, day.day, 12), DAILY[dev.id][column], flag))
            day += timedelta(days=1)
    ae = DEVICES[0]
    out.append(_reading(ae, local(2026, 10, 31, 23, 59, 59), 7.0))  # the last second of October: in October
    out.append(_reading(ae, local(2026, 11, 1), 1000.0))  # local midnight of 1 November: in November
    return out


def _alert(aid: str, rule: str, inst: str, state: str, ts: int, since: int) -> AlertPoint:
    return AlertPoint(aid, ts, state, inst, f"{inst}-dev", rule, "warning", "m", "m", 1.0, "", since, ts - since)


def alerts() -> list[AlertPoint]:
    l1, l2, s1, s2 = local(2026, 9, 28), local(2026, 10, 10), local(2026, 10, 21, 6), local(2026, 11, 2)
    return [_alert("L1", "leak", "inst-a", "open", l1, l1), _alert("L1", "leak", "inst-a", "resolved", l1 + 120 * 3600, l1),
            _alert("L2", "leak", "inst-a", "open", l2, l2), _alert("L2", "leak", "inst-a", "resolved", l2 + 24 * 3600, l2),
            _alert("S1", "silent", "inst-c", "open", s1, s1), _alert("S2", "silent", "inst-c", "open", s2, s2)]


def weighings() -> list[WeighingPoint]:
    day = local(2026, 10, 8, 9)
    return [WeighingPoint("a-s", "inst-a", "yinchuan", c.zone, c.category, day + k, kg, c.card, c.cleaner, c.owner_unit)
            for k, (c, kg) in enumerate(zip(CARDS, (30.0, 50.0, 20.0), strict=True))] + [
        WeighingPoint("a-s", "inst-a", "yinchuan", "unknown", "unknown", day + 10, 5.0, "X9", "unknown", "unknown")]


def costs() -> list[CostPoint]:
    return [CostPoint("inst-a", "yinchuan", "education", "electricity", midnight_of(date(2026, 10, d)), 100.0, 60.0, 50.0)
            for d in range(1, 32)]


@pytest.fixture
async def province_store(store_url):
    store = open_store(store_url)
    await store.open()
    await store.write(Batch(readings=readings(), weighings=weighings(), alerts=alerts(), costs=costs()))
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
def setup(tmp_path, monkeypatch):
    """A registry on disk and an empty DuckDB store; returns a loader of the province's figures."""
    registry = tmp_path / "registry"
    write_registry(Province([A, B, C], DEVICES, CARDS), registry)
    url = f"duckdb://{tmp_path / 'mw.duckdb'}"
    monkeypatch.setenv("METERWATCH_STORE", url)
    monkeypatch.setenv("METERWATCH_REGISTRY", str(registry))

    def load() -> None:
        async def go() -> None:
            store = open_store(url)
            await store.open()
            await store.write(Batch(readings=readings(), weighings=weighings(), alerts=alerts(), costs=costs()))
            await store.close()
        asyncio.run(go())
    return load
