"""A day of one institution priced from the store, by hand, on both backends."""

from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import date

import pytest

from analytics.costs import price_days
from meterwatch.const import DEFAULT_CITIES, INSTITUTION_TYPES
from meterwatch.localtime import DAY, local_day, midnight_of
from meterwatch.registry.model import Device, Institution, Registry
from meterwatch.registry.tariffs import load_tariffs
from meterwatch.store import Batch, ReadingPoint, open_store
from tests.core.test_tariffs import SAMPLE

TARIFFS = SAMPLE  # the issue's own example tariffs
INST = Institution("inst-a", "甲单位", "yinchuan", "office", "", 1000.0, 50)
DEVICES = {d.id: d for d in (Device("e1", "inst-a", "electricity", "kWh", 1.0, ""),
                             Device("w1", "inst-a", "water", "m3", 1.0, ""),
                             Device("h1", "inst-a", "heat", "GJ", 1.0, ""),
                             Device("h2", "inst-a", "heat", "kWh", 1.0, ""))}
QUOTAS = {"institution": {"inst-a": {"water": {"per": "institution", "constraint": 1200.0, "guide": 1000.0}}}}


def registry() -> Registry:
    tariffs, problems = load_tariffs(TARIFFS, DEFAULT_CITIES, INSTITUTION_TYPES)
    assert not problems
    return Registry({"inst-a": INST}, DEVICES, {}, QUOTAS, tariffs)


def point(device: str, kind: str, ts: int, consumption: float, interval: int) -> ReadingPoint:
    return ReadingPoint(device, "inst-a", "yinchuan", "office", kind, ts, 0.0, consumption, interval)


@asynccontextmanager
async def ten_days_of_electricity(store_url: str):
    """An open store holding 1 kWh an hour on e1 for ten local days from 2026-10-01; (store, first midnight)."""
    day0 = midnight_of(date(2026, 10, 1))
    store = open_store(store_url)
    await store.open()
    try:
        await store.write(Batch(readings=[point("e1", "electricity", day0 + 3600 * k, 1.0, 3600)
                                          for k in range(1, 24 * 10 + 1)]))
        yield store, day0
    finally:
        await store.close()


async def test_a_day_is_priced_by_band_tier_and_meter_unit(store_url):
    day0 = midnight_of(date(2026, 10, 1))
    readings = [point("e1", "electricity", day0 + 900 * k, 1.0, 900) for k in range(1, 97)]  # 00:15 .. 24:00
    readings += [point("e1", "electricity", day0, 5.0, 900)]  # closes 23:45-24:00 of 30 September: not this day
    readings += [point("w1", "water", day0 + 12 * 3600, 60.0, 43200), point("w1", "water", day0 + DAY, 60.0, 43200)]
    readings += [point("h1", "heat", day0 + DAY, 10.0, 86400), point("h2", "heat", day0 + DAY, 3600.0, 86400)]
    store = open_store(store_url)
    await store.open()
    try:
        await store.write(Batch(readings=readings))
        day = int(local_day(day0))
        costs = {c.kind: c for c in await price_days(store, registry(), day, day)}
    finally:
        await store.close()
    e, w, h = costs["electricity"], costs["water"], costs["heat"]
    assert all(c.ts == day0 for c in costs.values())
    # electricity: 4 kWh an hour; sharp 2 h, peak 7 h, flat 7 h, valley 8 h
    assert (e.quantity, e.sharp_kwh, e.peak_kwh, e.flat_kwh, e.valley_kwh) == pytest.approx((96, 8, 28, 28, 32))
    assert e.yuan == pytest.approx(8 * 1.10 + 28 * 0.95 + 28 * 0.62 + 32 * 0.30)
    assert e.kgco2e == pytest.approx(96 * 0.5366)
    # water: 120 m3 against a monthly quota of 1200 / 12 = 100: 20 m3 at x1.5
    assert (w.quantity, w.yuan) == pytest.approx((120, 100 * 4.40 + 20 * 4.40 * 1.5))
    # heat: 10 GJ + 3600 kWh (12.96 GJ) at 45 yuan/GJ, 110 kgCO2/GJ
    assert (h.quantity, h.yuan, h.kgco2e) == pytest.approx((22.96, 22.96 * 45, 22.96 * 110))
    assert {c.tariff for c in costs.values()} != {""}


async def test_days_are_priced_once_and_again_when_the_tariffs_change(store_url):
    """ensure_priced prices missing days, re-prices only the recent ones, and everything after a tariff change."""
    from analytics.costs import ensure_priced
    from meterwatch.store import CostPoint

    day0 = midnight_of(date(2026, 10, 1))
    readings = [point("e1", "electricity", day0 + 3600 * k, 1.0, 3600) for k in range(1, 24 * 10 + 1)]
    store = open_store(store_url)
    await store.open()
    try:
        await store.write(Batch(readings=readings))
        first = int(local_day(day0))
        reg = registry()
        assert await ensure_priced(store, reg, first, first + 9, recent_days=2) == 10  # one electricity point a day
        assert await ensure_priced(store, reg, first, first + 9, recent_days=2) == 2  # only the recent ones again
        changed, _ = load_tariffs(TARIFFS.replace("flat = 0.62", "flat = 0.70"), DEFAULT_CITIES, INSTITUTION_TYPES)
        reg2 = Registry(reg.institutions, reg.devices, reg.cards, reg.quotas, changed)
        assert await ensure_priced(store, reg2, first, first + 9, recent_days=2) == 10
        costs = await store.fetch(CostPoint)
    finally:
        await store.close()
    assert len(costs) == 10 and {c.tariff for c in costs} == {changed.fingerprint}
    assert sum(c.yuan for c in costs) == pytest.approx(10 * (2 * 1.10 + 7 * 0.95 + 7 * 0.70 + 8 * 0.30))


async def test_a_meter_priced_from_its_profile_and_from_its_tariff_registers_gives_the_same_figure(store_url):
    """One meter, two days of quarter-hours with uneven use; its T1..T4 registers count the same use by band
    (T1 sharp, T2 peak, T3 flat, T4 valley).  The second day priced both ways gives the same yuan, and says how."""
    from meterwatch.registry.tariffs import BANDS
    from meterwatch.store import MeterValuePoint

    with_registers = TARIFFS.replace('valley = ["23:00-07:00"] }',
                                     'valley = ["23:00-07:00"] }\nregisters = ["sharp", "peak", "flat", "valley"]')
    day0 = midnight_of(date(2026, 10, 1))
    plain, _ = load_tariffs(TARIFFS, DEFAULT_CITIES, INSTITUTION_TYPES)
    reg_tariffs, problems = load_tariffs(with_registers, DEFAULT_CITIES, INSTITUTION_TYPES)
    assert not problems
    schedule = reg_tariffs.schedules["electricity"][0]
    readings, values, registers = [], [], [100.0, 200.0, 300.0, 400.0]
    for k in range(1, 2 * 96 + 1):
        t = day0 + 900 * k
        use = 0.25 + (k % 7) * 0.1  # uneven, so an even split would not match by chance
        minute = ((t - 900 + 8 * 3600) % DAY) // 60
        registers[int(schedule.minute_band[minute])] += use
        readings.append(point("e1", "electricity", t, use, 900))
        values += [MeterValuePoint("e1", "inst-a", f"energy_forward_tariff_{n + 1}", t, round(v, 6))
                   for n, v in enumerate(registers)]
    store = open_store(store_url)
    await store.open()
    try:
        await store.write(Batch(readings=readings, values=values))
        day = int(local_day(day0)) + 1
        base = registry()
        by_profile = await price_days(store, Registry(base.institutions, base.devices, {}, base.quotas, plain), day, day)
        by_registers = await price_days(store, Registry(base.institutions, base.devices, {}, base.quotas, reg_tariffs),
                                        day, day)
    finally:
        await store.close()
    (p,), (r,) = [c for c in by_profile if c.kind == "electricity"], [c for c in by_registers if c.kind == "electricity"]
    assert (p.method, r.method) == ("profile", "registers")
    assert r.yuan == pytest.approx(p.yuan, rel=1e-9) and r.quantity == pytest.approx(p.quantity)
    assert [r.sharp_kwh, r.peak_kwh, r.flat_kwh, r.valley_kwh] == pytest.approx(
        [p.sharp_kwh, p.peak_kwh, p.flat_kwh, p.valley_kwh])
    assert len(BANDS) == 4 and p.yuan > 0


async def test_an_institution_without_a_tariff_is_listed_and_the_others_still_priced(store_url):
    """Tariffs only for Guyuan: the Yinchuan institution's day is kept with no yuan, and the budget says why."""
    from analytics.budget import execution

    tariffs, problems = load_tariffs('[[electricity]]\nfrom = 2026-01-01\ncities = ["guyuan"]\nprice = { flat = 0.5 }\n',
                                     DEFAULT_CITIES, INSTITUTION_TYPES)
    assert not problems
    other = Institution("inst-b", "乙单位", "guyuan", "office", "", 500.0, 20)
    devices = {**DEVICES, "b-e1": Device("b-e1", "inst-b", "electricity", "kWh", 1.0, "")}
    reg = Registry({"inst-a": INST, "inst-b": other}, devices, {}, {}, tariffs)
    day0 = midnight_of(date(2026, 10, 1))
    readings = [point("e1", "electricity", day0 + 3600 * k, 1.0, 3600) for k in range(1, 25)]
    readings += [ReadingPoint("b-e1", "inst-b", "guyuan", "office", "electricity", day0 + 3600 * k, 0.0, 2.0, 3600)
                 for k in range(1, 25)]
    store = open_store(store_url)
    await store.open()
    try:
        await store.write(Batch(readings=readings))
        day = int(local_day(day0))
        costs = {c.institution: c for c in await price_days(store, reg, day, day)}
        await store.write(Batch(costs=list(costs.values())))
        ex = await execution(store, reg, day0 + DAY, profile_min_days=300)
    finally:
        await store.close()
    assert costs["inst-a"].yuan is None and costs["inst-a"].quantity == 24.0
    assert costs["inst-b"].yuan == pytest.approx(48 * 0.5)
    assert ex.cost["electricity"].tolist() == [0.0, pytest.approx(24.0)]
    assert any("1 institutions: no electricity tariff in force" in n and "inst-a" in n for n in ex.notes), ex.notes


async def test_history_is_priced_a_part_at_a_time_recent_days_first(store_url):
    """max_days = 4 over 10 days of history, 2 recent: the recent two and the two oldest first, then onwards."""
    from analytics.costs import ensure_priced
    from meterwatch.store import PricedDay

    async with ten_days_of_electricity(store_url) as (store, day0):
        first, reg = int(local_day(day0)), registry()
        rounds = []
        for _ in range(4):
            await ensure_priced(store, reg, first, first + 9, recent_days=2, max_days=4)
            rounds.append(sorted(int(local_day(p.ts)) - first for p in await store.fetch(PricedDay)))
    assert rounds == [[0, 1, 8, 9], [0, 1, 2, 3, 8, 9], [0, 1, 2, 3, 4, 5, 8, 9], list(range(10))]


async def test_the_last_days_are_priced_again_at_most_every_reprice_every_s(store_url):
    """An evaluation prices the last three days again (late readings change them), but not every five minutes:
    at most once per ``reprice_every_s`` of evaluation time; 0 means every time."""
    from analytics.costs import price_through

    async with ten_days_of_electricity(store_url) as (store, day0):
        at = day0 + 10 * DAY - 3 * 3600  # the tenth day, 21:00: days 8, 9 and 10 are the last three
        reg = registry()
        assert await price_through(store, reg, at, max_days=4, reprice_every_s=3600) == 3  # one point a day
        assert await price_through(store, reg, at + 300, max_days=4, reprice_every_s=3600) == 0
        assert await price_through(store, reg, at + 3600, max_days=4, reprice_every_s=3600) == 3
        assert await price_through(store, reg, at + 3900, max_days=4, reprice_every_s=0) == 3
