"""Each benchmark at a tiny size, so that ``meterwatch bench`` keeps working.  Nothing here is timed."""

from __future__ import annotations

import asyncio
import re

import pytest

from benchmarks import analytics_accuracy, analytics_speed, dashboards, ingest, midnight, store
from dashboards.boards import all_boards
from meterwatch_cli.main import main
from benchmarks.servers import ServerUnavailable
from meterwatch.settings import Settings
from tests.conftest import _unavailable

pytestmark = pytest.mark.servers


def test_ingest_smoke_stores_every_reading_in_each_drain() -> None:
    try:
        report = asyncio.run(ingest.run(2_000))
    except ServerUnavailable as exc:
        _unavailable(str(exc))
        return
    total = int(re.search(r"^([\d,]+) readings", report).group(1).replace(",", ""))
    stored = int(re.search(r"\(([\d,]+) stored\)", report).group(1).replace(",", ""))
    assert total >= 2_000 and stored == total
    assert re.search(r"a/b = [\d.]+ \(target >= 5\); a/c = [\d.]+", report)


def test_midnight_smoke_loses_nothing() -> None:
    try:
        report = asyncio.run(midnight.run(10, 1.0, timeout_s=120))
    except ServerUnavailable as exc:
        _unavailable(str(exc))
        return
    assert "| lost | 0 |" in report
    stored, total = re.search(r"\| readings stored \| ([\d,]+) of ([\d,]+) \|", report).groups()
    assert stored == total and int(total.replace(",", "")) > 0


def test_dashboards_smoke_times_every_panel_query(influxd) -> None:
    results = asyncio.run(dashboards.measure(5, raw_days=1, repeat=1, influx_port=influxd.port))
    queries = sum(len(p.queries) for b in all_boards(Settings()) for p in b.panels())
    assert len(results) == queries + 1  # and the raw comparison
    assert all(ms > 0 for _, _, ms, _ in results)
    rows = {panel: n for uid, panel, _, n in results if uid == "mw-province"}
    assert rows["本年各市分类用量 This year by city, type and kind"] > 0  # the year rollup was loaded
    assert "over the 300 ms target" in dashboards.report(results)


def test_store_smoke_writes_the_same_readings_to_both_backends(influxd) -> None:
    results = asyncio.run(store.measure(5, 2, influx_port=influxd.port))
    assert results["duckdb"]["readings"] == results["influxdb"]["readings"] > 0
    assert {k for k in results["duckdb"] if k.startswith("rule:")} == {
        "rule:silent", "rule:leak", "rule:burst", "rule:meter_fault", "rule:sorting", "rule:overuse"}
    assert "| one whole evaluation, s |" in store.report(results, 5, 2)


def test_analytics_speed_smoke_numpy_and_pandas_find_the_same() -> None:
    pytest.importorskip("pandas", reason="pandas is the benchmark's competitor: pip install 'meterwatch[bench]'")
    results = analytics_speed.measure(300)
    assert set(results) == {"floor", "numpy", "pandas"}
    assert results["numpy"]["leak"] > 0  # the fleet has night flow above the threshold somewhere
    assert "pandas the same" in analytics_speed.report(results, 300)


def test_analytics_accuracy_smoke_reports_every_rule() -> None:
    report = asyncio.run(analytics_accuracy.run(20, 8, 24.0, None))
    for rule in ("leak", "burst", "silent", "meter_fault", "sorting"):
        assert f"| {rule} |" in report


def test_bench_command_rejects_an_unknown_suite(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--only", "nothing"])
    assert "invalid choice" in capsys.readouterr().err
