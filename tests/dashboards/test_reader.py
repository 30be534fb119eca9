"""Grafana's read-only InfluxDB user, created as docs/dashboards.md says, on an influxd with auth on."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.servers import Server, start_influxd
from dashboards.boards import all_boards
from dashboards.provisioning import datasource
from dashboards.validate import run_board, variable_values
from scenarios.facts import analytics_facts
from meterwatch.settings import GrafanaSettings, Settings
from meterwatch.store import AlertPoint, Batch, ReadingPoint, StatisticPoint, WeighingPoint
from meterwatch.store.errors import PermanentStoreError
from meterwatch.store.influx import InfluxStore
from tests.conftest import _serve

pytestmark = pytest.mark.servers

DOC = Path(__file__).resolve().parents[2] / "docs" / "dashboards.md"
PASSWORDS = {"<admin password>": "adm1n-pw", "<writer password>": "wr1ter-pw", "<reader password>": "re4der-pw"}


def documented_statements() -> list[str]:
    """The InfluxQL block of the read-only user section, passwords filled in."""
    section = DOC.read_text(encoding="utf-8").split("### Grafana reads as a read-only user", 1)[1]
    block = re.search(r"```sql\n(.*?)```", section, re.S)
    assert block, "docs/dashboards.md lost the statements that create Grafana's user"
    text = block.group(1)
    for placeholder, password in PASSWORDS.items():
        text = text.replace(placeholder, password)
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(lambda d: start_influxd(d, auth=True), tmp_path_factory, "influxd-auth")


def _batch(now: int) -> Batch:
    ts = now - 3600
    return Batch(
        readings=[ReadingPoint(device="w1", institution="i1", city="yinchuan", type="office", kind="water", ts=ts,
                               register=10.0, consumption=0.5)],
        weighings=[WeighingPoint(scale="s1", institution="i1", city="yinchuan", zone="z1", category="recyclable",
                                 ts=ts, weight_kg=12.5, card="c1", cleaner="c", owner_unit="u")],
        statistics=[StatisticPoint(institution="i1", city="yinchuan", type="office", indicator="energy", ts=ts,
                                   use=1234.0, per_capita=2.0, per_m2=3.0, rank_type=1, rank_type_city=1,
                                   rank_type_capita=1, rank_type_city_capita=1, yoy=0.1, flag=None, name="一中")],
        alerts=[AlertPoint(id="a1", rule="leak", institution="i1", device="w1", severity="warning", state="open",
                           ts=ts, value=0.3, unit="m3/h", since=ts, age_s=0, message="漏水", message_en="leak")])


def test_reader_runs_the_dashboards_but_cannot_write_or_drop(secured: Server) -> None:
    base = f"influxdb://127.0.0.1:{secured.port}/meterwatch"
    settings = Settings(store=base, store_user="meterwatch", store_password=PASSWORDS["<writer password>"],
                        grafana=GrafanaSettings(reader_password=PASSWORDS["<reader password>"]))
    source = datasource(settings)
    assert (source["user"], source["jsonData"]["httpMode"]) == ("grafana", "GET")
    now = int(time.time())

    async def scenario() -> dict:
        setup = InfluxStore(base)  # no user yet: influxd accepts only the creation of the admin
        admin = InfluxStore(base, user="admin", password=PASSWORDS["<admin password>"])
        writer = InfluxStore(base, user="meterwatch", password=PASSWORDS["<writer password>"])
        reader = InfluxStore(base, user=source["user"], password=PASSWORDS["<reader password>"])
        out: dict = {}
        try:
            statements = documented_statements()
            await setup.query(statements[0], method="POST", database=False)
            for statement in statements[1:]:
                await admin.query(statement, method="POST", database=False)
            await writer.open()  # as the collector starts: the database is the admin's, the writer finds it
            await writer.write(_batch(now))
            runs = []
            for board in all_boards(settings, analytics_facts(settings)):
                chosen = {"name": "一中"} if board.uid in ("mw-institution", "mw-garbage") else {}
                values = await variable_values(reader, board, chosen, missing="(none)")
                runs += await run_board(reader, board, values, now)
            out["runs"] = runs
            for name, attempt in (("write", reader.write(_batch(now + 60))),
                                  ("drop", reader.query('DROP MEASUREMENT "weighing"', method="POST")),
                                  ("drop over GET", reader.query('DROP MEASUREMENT "weighing"')),
                                  ("create database", writer.query('CREATE DATABASE "other"', method="POST"))):
                try:
                    await attempt
                    out[name] = "accepted"
                except PermanentStoreError as exc:
                    out[name] = str(exc)
            out["counts"] = [await admin.count(t) for t in (ReadingPoint, WeighingPoint, StatisticPoint, AlertPoint)]
            out["grants"] = await admin.query('SHOW GRANTS FOR "grafana"', database=False)
        finally:
            for store in (setup, admin, writer, reader):
                await store.close()
        return out

    out = asyncio.run(scenario())
    runs = out["runs"]
    assert len(runs) >= 50
    refused = [f"{r.board} {r.panel}: {r.problem}" for r in runs if r.problem.startswith(("InfluxDB", "InfluxQL"))]
    assert not refused, "\n".join(refused)
    answered = {(r.board, r.panel) for r in runs if not r.problem}
    assert {("mw-institution", "本年用量 Use this year"), ("mw-garbage", "本单位按区域 The institution, by zone"),
            ("mw-alerts", "未关闭告警 Open alerts")} <= answered, sorted(answered)
    assert out["write"].startswith("InfluxDB 403"), out["write"]
    assert "not authorized" in out["drop"] and "not authorized" in out["drop over GET"], out
    assert "not authorized" in out["create database"], out["create database"]
    assert out["counts"] == [1, 1, 1, 1]  # the reader's write and drops changed nothing
    assert out["grants"][0]["values"] == [["meterwatch", "READ"]]
