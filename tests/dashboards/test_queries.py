"""Every panel's query, run as Grafana would run it, against a real influxd holding a simulated province.

The sample is 20 institutions: 10 days of history (and the same days last
year), the last half hour through broker and collector, analytics replayed
four times a day, rollups computed.  Each query must return rows with the
columns its panel reads.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

from dashboards.boards import all_boards
from scenarios.facts import analytics_facts
from scenarios.sample import BOARD_RANGE, PICKS_INSTITUTION, Sample, load_sample
from dashboards.validate import run_board, variable_values
from meterwatch.localtime import DAY, local_midnight
from meterwatch.settings import Settings
from meterwatch.store import ReadingPoint
from meterwatch.store.aggregate import Aggregate
from meterwatch.store.influx import InfluxStore

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def loaded(influxd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Sample]]:
    work = tmp_path_factory.mktemp("dash")
    settings = Settings(store=f"influxdb://127.0.0.1:{influxd.port}/d_{uuid.uuid4().hex[:8]}",
                        registry=work / "registry")
    sample = asyncio.run(load_sample(settings, work, institutions=20, days=10))
    yield settings, sample


async def _pick_institution(store: InfluxStore, sample: Sample) -> str:
    """The sample's showcase, which must be an office with every kind of meter, a scale and an alert."""
    alerted = {row[1] for s in await store.query('SHOW TAG VALUES FROM "alert" WITH KEY = "institution"')
               for row in s["values"]}
    shown = sample.showcase(alerted)
    assert sample.meter_kinds()[shown.id] >= {"water", "electricity", "heat", "scale"} and shown.id in alerted, (
        "the sample has no office with every kind of meter and an alert")
    return shown.name


@pytest.mark.parametrize("uid", ["mw-province", "mw-institution", "mw-alerts", "mw-garbage", "mw-collector"])
def test_every_panel_query_returns_the_columns_it_reads(loaded, uid: str) -> None:
    settings, sample = loaded
    board = next(b for b in all_boards(settings, analytics_facts(settings)) if b.uid == uid)

    async def check() -> list:
        store = InfluxStore(settings.store)
        try:
            chosen = {"name": await _pick_institution(store, sample)} if uid in PICKS_INSTITUTION else {}
            values = await variable_values(store, board, chosen)
            return await run_board(store, board, values, int(time.time()), BOARD_RANGE.get(uid))
        finally:
            await store.close()

    runs = asyncio.run(check())
    assert len(runs) == sum(len(p.queries) for p in board.panels())
    failures = [f"{r.panel}: {r.problem}\n    {r.text}" for r in runs if r.problem]
    assert not failures, "\n".join(failures)


def test_rollup_equals_raw_readings_per_local_day(loaded) -> None:
    settings, sample = loaded

    async def compare() -> tuple[dict, dict, list]:
        store = InfluxStore(settings.store)
        try:
            # To the end of today, not the sample's end: the collector stamps frames with the time it received
            # them, and accepts readings from gateway clocks running up to an hour fast.
            raw = await store.aggregate(Aggregate(ReadingPoint, {"sum": ("sum", "consumption")}, sample.start,
                                                  local_midnight(sample.end) + DAY, by=("device",),
                                                  bucket_s=DAY))
            series = await store.query(f'SELECT "consumption", "device" FROM "consumption_1d" '
                                       f"WHERE time >= {local_midnight(sample.start)}s")
            cqs = await store.query("SHOW CONTINUOUS QUERIES", database=False)
        finally:
            await store.close()
        want = {(d, int(t)): v for d, t, v in zip(raw["device"], raw["bucket"], raw["sum"], strict=True)}
        got = {(row[2], int(row[0])): row[1] for s in series for row in s["values"]}
        names = [row[0] for s in cqs if s["name"] == store.database for row in s["values"]]
        return want, got, names

    want, got, names = asyncio.run(compare())
    assert len(want) > 500
    # The first (partial) day is summed from the sample's start in one, from local midnight in the other.
    first = min(t for _, t in want)
    keys = [k for k in want if k[1] != first]
    wrong = [(k, want[k], got.get(k)) for k in keys
             if k not in got or abs(got[k] - want[k]) > 1e-6 * max(1.0, abs(want[k]))]
    assert not wrong, wrong[:10]
    assert sorted(names) == ["cq_consumption_1d", "cq_consumption_city_1d", "cq_weighing_city_1d"]


def test_sample_has_dead_letters_with_their_reasons(loaded) -> None:
    settings, _ = loaded

    async def reasons() -> dict[str, int]:
        store = InfluxStore(settings.store)
        try:
            series = await store.query('SELECT count("topic") FROM "reject" GROUP BY "reason"')
        finally:
            await store.close()
        return {s["tags"]["reason"]: s["values"][0][1] for s in series}

    found = asyncio.run(reasons())
    assert found.get("malformed_json", 0) >= 1 and found.get("institution_mismatch", 0) >= 1, found


def test_render_refuses_a_store_that_holds_data(loaded, tmp_path, monkeypatch, capsys) -> None:
    """`dashboards render` loads a simulated province: never into a store with (here: the sample's) data."""
    from meterwatch_cli.main import main

    settings, _ = loaded
    before = asyncio.run(_count_readings(settings))
    monkeypatch.setenv("METERWATCH_STORE", settings.store)
    monkeypatch.setenv("METERWATCH_REGISTRY", str(tmp_path / "registry"))
    assert main(["dashboards", "render", "--out", str(tmp_path / "png"), "--institutions", "3"]) == 2
    assert "refusing to load a simulated province" in capsys.readouterr().err
    assert asyncio.run(_count_readings(settings)) == before
    assert not (tmp_path / "png").exists()


async def _count_readings(settings: Settings) -> int:
    store = InfluxStore(settings.store)
    try:
        return await store.count(ReadingPoint)
    finally:
        await store.close()
