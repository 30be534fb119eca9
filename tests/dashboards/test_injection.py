"""Registry text cannot break or inject into the dashboards' queries, on a real influxd.

Institution names (and ids) with quotes, backslashes, slashes, semicolons,
regex metacharacters and crafted second statements are picked as Grafana
would pick them; every query is expanded as Grafana expands it and run.
Each pick must find exactly its own institution's rows, and nothing else
may run: the database and its measurements are still there afterwards.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from dashboards.boards import all_boards
from dashboards.validate import QueryRun, run_board, variable_values
from meterwatch.settings import Settings
from meterwatch.store import StatisticPoint, WeighingPoint
from meterwatch.store.influx import InfluxStore
from meterwatch.store.records import Batch
from scenarios.facts import analytics_facts

pytestmark = pytest.mark.servers

DROP_BY_QUOTE = ("x' ; DROP MEASUREMENT \"weighing\" ; "
                 "SHOW TAG VALUES FROM \"statistic\" WITH KEY = \"name\" WHERE \"name\" = 'x")
DROP_BY_SLASH = ("x/ ; DROP MEASUREMENT \"weighing\" ; "
                 "SHOW TAG VALUES FROM \"statistic\" WITH KEY = \"name\" WHERE \"name\" =~ /x")
NAMES = [
    "O'Brien 学校", 'say "hi" 中学', "back\\slash 医院", "a/b 大学", "semi; colon", ".*", "a.c", "abc",
    "x+y?(z)[w]{2}|v^u$t", DROP_BY_QUOTE, DROP_BY_SLASH,
    "x' ; DROP DATABASE \"{db}\" ; SHOW TAG VALUES FROM \"statistic\" WITH KEY = \"name\" WHERE \"name\" = 'x",
    "x/ ; DROP DATABASE \"{db}\" ; SHOW MEASUREMENTS WITH MEASUREMENT =~ /x",
]


def _institution_id(k: int) -> str:
    return f"{k:02d}'/.*"  # a quote, a slash and ".*": unescaped, it would break or match every id


def _batch(names: list[str], now: int) -> Batch:
    batch = Batch()
    for k, name in enumerate(names):
        inst = _institution_id(k)
        batch.statistics.append(StatisticPoint(
            institution=inst, city="yinchuan", type="office", indicator="energy", ts=now - 3600, use=1000.0 + k,
            per_capita=1.0, per_m2=1.0, rank_type=k + 1, rank_type_city=k + 1, rank_type_capita=k + 1,
            rank_type_city_capita=k + 1, yoy=0.1, flag=None, name=name))
        batch.weighings.append(WeighingPoint(
            scale=f"s{k}", institution=inst, city="yinchuan", zone=f"zone{k}", category="recyclable",
            ts=now - 3600, weight_kg=10.0 + k, card=f"c{k}", cleaner="c", owner_unit="u"))
    return batch


def _run(runs: list[QueryRun], panel: str) -> QueryRun:
    return next(r for r in runs if r.panel == panel)


async def _pick(store: InfluxStore, settings: Settings, name: str, now: int) -> dict[str, object]:
    boards = {b.uid: b for b in all_boards(settings, analytics_facts(settings))}
    found: dict[str, object] = {}
    for uid, panel in (("mw-institution", "本年用量 Use this year"), ("mw-garbage", "本单位按区域 The institution, by zone")):
        values = await variable_values(store, boards[uid], {"name": name})
        runs = await run_board(store, boards[uid], values, now)
        errors = [f"{r.panel}: {r.problem}\n  {r.text}" for r in runs if r.problem.startswith(("InfluxQL", "InfluxDB"))]
        assert not errors, "\n".join(errors)
        series = _run(runs, panel).series
        found[uid] = (values["institution"], [(s.get("tags"), [row[1:] for row in s["values"]]) for s in series])
    return found


def test_hostile_names_find_only_their_institution_and_run_nothing_else(influxd) -> None:
    database = f"inj_{uuid.uuid4().hex[:8]}"
    settings = Settings(store=f"influxdb://127.0.0.1:{influxd.port}/{database}")
    names = [n.replace("{db}", database) for n in NAMES]
    now = int(time.time())

    async def scenario() -> tuple[dict[str, dict[str, object]], list, list, int, int]:
        store = InfluxStore(settings.store)
        try:
            await store.open()
            await store.write(_batch(names, now))
            picked = {name: await _pick(store, settings, name, now) for name in names}
            databases = await store.query("SHOW DATABASES", database=False)
            measurements = await store.query("SHOW MEASUREMENTS")
            return (picked, [r[0] for s in databases for r in s["values"]],
                    sorted(r[0] for s in measurements for r in s["values"]),
                    await store.count(WeighingPoint), await store.count(StatisticPoint))
        finally:
            await store.close()

    picked, databases, measurements, weighings, statistics = asyncio.run(scenario())
    for k, name in enumerate(names):
        inst = _institution_id(k)
        assert picked[name]["mw-institution"] == (inst, [(None, [[1000.0 + k]])]), name
        assert picked[name]["mw-garbage"] == (inst, [({"zone": f"zone{k}"}, [[10.0 + k]])]), name
    assert database in databases
    assert measurements == ["statistic", "weighing"]
    assert (weighings, statistics) == (len(names), len(names))
