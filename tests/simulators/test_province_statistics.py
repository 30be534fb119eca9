"""The simulated province behaves like the real one where analytics and dashboards will look."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

import numpy as np
import pytest

from meterwatch_cli.main import main
from meterwatch.store import ReadingPoint, WeighingPoint, open_store
from simulators.faults import read_labels
from simulators.meters import FleetModel
from simulators.province import generate_province
from simulators.traffic import simulate_traffic

START = 1_767_196_800  # 2026-01-01 00:00 China time, heating season
WEEK = 7 * 86400


@pytest.fixture(scope="module")
def province():
    return generate_province(600, seed=4)


@pytest.fixture(scope="module")
def week(province):
    model = FleetModel(province, START, START + WEEK, seed=4)
    chunks = list(model.chunks())
    ts = np.concatenate([c.ts for c in chunks])
    register = np.concatenate([c.register for c in chunks], axis=1)
    use = np.diff(register, axis=1, prepend=register[:, :1])
    return model, ts, use


def test_full_province_shape():
    p = generate_province(5010, seed=42)
    cities = Counter(i.city for i in p.institutions)
    kinds = Counter(d.kind for d in p.devices)
    assert len(p.institutions) == 5010 and cities.most_common(1)[0][0] == "yinchuan"
    assert 22_000 <= len(p.devices) <= 28_000
    assert kinds["water"] >= 5010 and kinds["electricity"] >= 5010 and 0 < kinds["heat"] < 5010
    scale_types = Counter(next(i.type for i in p.institutions if i.id == d.institution)
                          for d in p.devices if d.kind == "scale")
    assert set(scale_types) == {"office", "education"}


def night_minimum(ts, use, night_days):
    """Per meter and night: the smallest quarter-hour of use between 02:00 and 04:00 local."""
    hour = ((ts + 8 * 3600) // 3600) % 24
    day = (ts + 8 * 3600) // 86400
    out = []
    for d in night_days:
        cols = (day == d) & (hour >= 2) & (hour < 4)
        out.append(use[:, cols].min(axis=1))
    return np.stack(out, axis=1)


def test_leaks_have_night_flow_and_healthy_buildings_do_not(week):
    model, ts, use = week
    days = sorted(set(((ts + 8 * 3600) // 86400).tolist()))[1:-1]
    mnf = night_minimum(ts, use, days)
    water = model.kinds == "water"
    faulty = {f.device for f in model.faults if f.kind in ("leak", "burst", "frozen", "backwards", "replacement",
                                                            "rollover")}
    leaks = [f for f in model.faults if f.kind == "leak"]
    assert leaks
    night_starts = np.array(days) * 86400 - 8 * 3600 + 2 * 3600
    for f in leaks:  # every night after the leak began: at least the leak's own flow
        after = night_starts >= f.start
        assert (mnf[f.device, after] >= f.magnitude * 0.25 * 0.999).all()
    healthy = [d for d in np.flatnonzero(water) if d not in faulty]
    share_with_night_flow = (mnf[healthy] > 1e-9).mean()
    assert share_with_night_flow < 0.02, share_with_night_flow


def test_per_type_yearly_figures_are_plausible(week, province):
    model, ts, use = week
    faulty = {f.device for f in model.faults}
    per_year = use.sum(axis=1) * 365 * 86400 / (ts[-1] - ts[0] + 900)
    per_year[list(faulty)] = np.nan  # rollovers and resets are not consumption
    per_year = np.where(np.isnan(per_year), np.nanmedian(per_year), per_year)
    by = defaultdict(float)
    size = defaultdict(float)
    for i, (d, inst) in enumerate(zip(model.devices, model.institutions, strict=True)):
        by[(inst.type, d.kind)] += per_year[i]
    for inst in province.institutions:
        size[(inst.type, "occupants")] += inst.occupants
        size[(inst.type, "area")] += inst.floor_area_m2
    water_pc = by[("office", "water")] / size[("office", "occupants")]
    elec_m2 = by[("office", "electricity")] / size[("office", "area")]
    hospital_elec_m2 = by[("medical", "electricity")] / size[("medical", "area")]
    # Public-institution benchmarks: offices ~10-40 m3 water per person-year, 30-150 kWh/m2-year;
    # hospitals use more electricity per m2 than offices.
    assert 5 < water_pc < 40, water_pc
    assert 30 < elec_m2 < 150, elec_m2
    assert hospital_elec_m2 > elec_m2


def test_weekends_and_holidays_are_quiet_for_offices_not_hospitals(week):
    model, ts, use = week
    local_day = (ts + 8 * 3600) // 86400
    holiday = np.isin(local_day, [20454, 20455, 20456])  # 1-3 Jan 2026
    workday = np.isin(local_day, [20459, 20460])  # Tue 6, Wed 7 Jan
    office = np.array([i.type == "office" and d.kind == "electricity" for d, i in
                       zip(model.devices, model.institutions, strict=True)])
    hospital = np.array([i.type == "medical" and d.kind == "electricity" for d, i in
                         zip(model.devices, model.institutions, strict=True)])
    ratio = lambda rows: use[rows][:, holiday].sum() / 3 / (use[rows][:, workday].sum() / 2)  # noqa: E731
    assert ratio(office) < 0.6 and ratio(hospital) > 0.8


def test_heat_only_in_the_heating_season(province):
    summer = FleetModel(province, START + 180 * 86400, START + 181 * 86400, seed=4)
    (chunk, *_) = list(summer.chunks())
    heat = summer.kinds == "heat"
    assert np.allclose(np.diff(chunk.register[heat], axis=1), 0)


def test_same_seed_same_traffic_and_labels(province):
    a = simulate_traffic(province, START, START + 6 * 3600, seed=9)
    b = simulate_traffic(province, START, START + 6 * 3600, seed=9)
    c = simulate_traffic(province, START, START + 6 * 3600, seed=10)
    assert a.messages == b.messages and a.labels == b.labels
    assert a.messages != c.messages


def test_nb_iot_behaviour_batches_midnight_burst_late_and_retries(province):
    traffic = simulate_traffic(province, START, START + 2 * 86400, seed=3)
    readings = [m for m in traffic.messages if m.topic.endswith("/reading")]
    at = np.array([m.at for m in readings])
    per_minute = np.bincount((((at + 8 * 3600) % 86400) // 60).astype(int), minlength=1440)
    assert per_minute[:2].max() > 20 * np.median(per_minute)  # the midnight burst
    batched = sum(b'"readings"' in m.payload for m in readings) / len(readings)
    assert batched > 0.9
    per_topic = defaultdict(list)
    for m in readings:
        per_topic[m.topic].append(m)
    assert sum(len(v) - len({x.payload for x in v}) for v in per_topic.values()) > 0  # retries
    faults = Counter(label.fault for label in traffic.labels)
    assert {"retry", "malformed", "spoof", "unknown_device"} <= set(faults)


def test_backfill_command_writes_history_and_labels_deterministically(tmp_path, monkeypatch, capsys):
    assert main(["simulate", "registry", "--out", str(tmp_path / "registry"), "--institutions", "40",
                 "--seed", "2"]) == 0
    monkeypatch.setenv("METERWATCH_REGISTRY", str(tmp_path / "registry"))
    counts = []
    for name in ("a", "b"):
        monkeypatch.setenv("METERWATCH_STORE", f"duckdb://{tmp_path / name}.duckdb")
        assert main(["simulate", "backfill", "--days", "2", "--end", "2026-01-10T00:00:00+08:00",
                     "--labels", str(tmp_path / f"{name}.csv")]) == 0
        counts.append(asyncio.run(_dump(f"duckdb://{tmp_path / name}.duckdb")))
    assert counts[0] == counts[1] and counts[0][0] > 5000
    assert read_labels(tmp_path / "a.csv") == read_labels(tmp_path / "b.csv")
    assert "readings/s" in capsys.readouterr().out


async def _dump(url):
    store = open_store(url)
    await store.open()
    try:
        readings = await store.fetch(ReadingPoint)
        return (len(readings), round(sum(r.consumption or 0 for r in readings), 3), await store.count(WeighingPoint),
                [r.flag for r in readings if r.flag])
    finally:
        await store.close()


def test_garbage_categories_and_mis_sorting(province):
    from simulators.faults import FaultRates
    from simulators.weighings import WeighingModel

    model = WeighingModel(province, 4, START, START + 14 * 86400, FaultRates(mis_sorted=0.1, unknown_card=0.1))
    cards = {c.card: c.category for c in province.cards}
    weights = defaultdict(lambda: defaultdict(float))
    for w in model.events(START, START + 14 * 86400, np.random.default_rng(1)):
        weights[w.scale.institution][cards.get(w.card, "unknown")] += w.weight_kg
    def share(insts):
        total = sum(sum(weights[i].values()) for i in insts)
        return sum(weights[i]["recyclable"] for i in insts) / total
    sorted_ok = [i for i in weights if i not in model.mis_sorted]
    assert 0.2 < share(sorted_ok) < 0.4  # recyclables ~30% of the weight
    assert model.mis_sorted and share(model.mis_sorted) < 0.02
    unknown_scales = {w.scale.id for w in model.events(START, START + 14 * 86400, np.random.default_rng(2))
                      if w.card not in cards}
    assert unknown_scales and unknown_scales <= set(model.new_cleaner)  # only where a new cleaner works
