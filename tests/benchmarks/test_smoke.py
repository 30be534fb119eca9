"""Each benchmark at a tiny size: ``meterwatch bench`` keeps working and its figures are plausible.

Nothing here is timed against a target: a duration or a rate must only be a positive number.  What is
checked are the figures that do not depend on the machine: everything published is stored, both
variants of a comparison find the same, precision and recall are what the tiny, seeded province gives.
"""

from __future__ import annotations

import asyncio
import math
import re

import pytest

from analytics.rules import discover
from benchmarks import analytics_accuracy, analytics_speed, dashboards, fanout, ingest, midnight, push, store
from dashboards.boards import all_boards
from meterwatch_cli.main import main
from benchmarks.servers import ServerUnavailable
from meterwatch.settings import Settings
from scenarios.facts import analytics_facts
from tests.conftest import _unavailable

pytestmark = pytest.mark.servers
RULES = tuple(discover())  # every rule module


def number(text: str) -> float:
    return float(text.replace(",", ""))


def table(report: str) -> dict[str, list[str]]:
    """A markdown table's rows, by their first cell (the header and the rule line left out)."""
    rows = {}
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and not set(cells[0]) <= {"-", ":"}:
            rows[cells[0]] = cells[1:]
    return rows


@pytest.mark.parametrize("per_message", [ingest.PER_MESSAGE, 96])
def test_ingest_smoke_stores_every_reading_and_reports_positive_rates(per_message: int) -> None:
    try:
        report = asyncio.run(ingest.run(1_920, per_message))
    except ServerUnavailable as exc:
        _unavailable(str(exc))
        return
    total, messages = map(number, re.search(r"^([\d,]+) readings in ([\d,]+) messages", report).groups())
    assert total == 1_920 and messages == total / per_message
    drains = {name.split(" ")[0]: cells for name, cells in table(report).items() if name.startswith("(")}
    assert set(drains) == {"(a)", "(a2)", "(b)", "(c)", "(d)"}  # (a2): the default collect --workers
    stored = number(re.search(r"\(([\d,]+) stored\)", report).group(1))
    assert stored == total  # every reading, once
    rate = {name: number(cells[1]) for name, cells in drains.items()}
    assert all(r > 0 for r in rate.values())
    a_b, a_c, a_d = map(float, re.search(r"a/b = ([\d.]+) \(target >= 5\); a/c = ([\d.]+) \(target >= 0.5\); "
                                         r"a/d = ([\d.]+)", report).groups())
    assert a_b == pytest.approx(rate["(a)"] / rate["(b)"], abs=0.06)  # the ratios are those of the rates
    assert a_c == pytest.approx(rate["(a)"] / rate["(c)"], abs=0.006)
    assert a_d == pytest.approx(rate["(a)"] / rate["(d)"], abs=0.006)
    a2_d = float(re.search(r"a2/d = ([\d.]+)", report).group(1))
    assert a2_d == pytest.approx(rate["(a2)"] / rate["(d)"], abs=0.006)
    collector_cpu = float(re.search(r"CPU seconds: collector ([\d.]+)", report).group(1))
    per_cpu_s = number(re.search(r"one collector process: ([\d,]+) readings per CPU second", report).group(1))
    assert collector_cpu >= 0 and per_cpu_s > 0


def test_push_smoke_answers_every_request_200_and_stores_every_reading() -> None:
    try:
        report = asyncio.run(push.run(300, 10, 4, 32, timeout_s=120))
    except ServerUnavailable as exc:
        _unavailable(str(exc))
        return
    sent, readings = map(number, re.search(r"^([\d,]+) push requests .*, (\d+) readings each", report).groups())
    assert (sent, readings) == (300, 4)
    rows = table(report)
    assert rows["answers"] == ["300 x 200"]  # every push answered durable, none refused or timed out
    assert rows["readings stored"] == ["1,200 of 1,200"] and rows["lost"] == ["0"]
    assert number(rows["requests/s answered (200 = durable)"][0]) > 0
    assert number(rows["time from the first request until all stored"][0].removesuffix(" s")) > 0


def test_midnight_smoke_stores_every_reading_and_weighing() -> None:
    try:
        report = asyncio.run(midnight.run(10, 0.0, timeout_s=120, workers=2))  # all at once, two workers
    except ServerUnavailable as exc:
        _unavailable(str(exc))
        return
    devices, published, readings, weighings = map(number, re.search(
        r"([\d,]+) devices report within .*\(([\d,]+) messages published: ([\d,]+) readings, 96 a meter, "
        r"and ([\d,]+) weighings\)", report).groups())
    assert published == devices  # one message a device: the meter's day, or a scale's weighing
    assert readings > 0 and readings % 96 == 0 and weighings > 0
    assert published == readings / 96 + weighings
    rows = table(report)
    assert rows["readings stored"] == [f"{readings:,.0f} of {readings:,.0f}"]
    assert rows["weighings stored"] == [f"{weighings:,.0f} of {weighings:,.0f}"]
    assert rows["lost"] == ["0"]
    assert number(rows["time from the first message until all stored"][0].removesuffix(" s")) > 0
    assert number(rows["readings/s over the burst"][0]) > 0
    assert number(rows["time from the last message published until all stored"][0].removesuffix(" s")) >= 0
    memory = rows["peak resident memory per collector process"][0].removesuffix(" MB").split(", ")
    assert len(memory) == 2 and all(number(mb) > 0 for mb in memory)  # one figure per worker


def test_fanout_smoke_measures_a_skipping_and_an_owning_worker_over_the_same_messages() -> None:
    try:
        report = asyncio.run(fanout.run(20))
    except ServerUnavailable as exc:
        _unavailable(str(exc))
        return
    n = number(re.match(r"([\d,]+) messages", report).group(1))
    rows = {name.split(":")[0]: cells for name, cells in table(report).items() if name[:3] in ("1/2", "0/2")}
    assert n > 0 and sorted(rows) == ["0/2", "1/2"]
    for cpu, per_message, _ in rows.values():
        assert number(cpu) >= 0 and number(per_message) == pytest.approx(number(cpu) / n * 1e6, abs=1)
    assert "a skipped message costs" in report


def test_dashboards_smoke_times_every_panel_query_and_finds_the_loaded_data(influxd) -> None:
    results = asyncio.run(dashboards.measure(5, raw_days=1, repeat=1, influx_port=influxd.port))
    queries = sum(len(p.queries) for b in all_boards(Settings(), analytics_facts(Settings())) for p in b.panels())
    assert len(results) == queries + 1  # and the raw comparison
    assert all(ms > 0 and rows >= 0 for _, _, ms, rows in results)
    rows = {panel: n for uid, panel, _, n in results if uid == "mw-province"}
    assert rows["本年各市分类用量 This year by city, type and kind"] > 0  # the year rollup was loaded
    boards_with_data = {uid for uid, _, _, n in results if n > 0}
    assert {"mw-province", "mw-institution", "mw-garbage"} <= boards_with_data  # each reads what was loaded
    panels = [r for r in results if r[0] != "raw"]
    summary = re.search(r"(\d+) panel queries; slowest ([\d.]+) ms; (\d+) over the (\d+) ms target",
                        dashboards.report(results))
    assert int(summary.group(1)) == len(panels) == queries
    assert float(summary.group(2)) == round(max(ms for _, _, ms, _ in panels), 1)
    assert int(summary.group(3)) == sum(ms > dashboards.TARGET_MS for _, _, ms, _ in panels)


def test_store_smoke_writes_the_same_readings_to_both_backends(influxd) -> None:
    results = asyncio.run(store.measure(5, 2, influx_port=influxd.port))
    duck, influx = results["duckdb"], results["influxdb"]
    assert duck["readings"] == influx["readings"] > 0
    assert duck["records"] == influx["records"] > 0
    for backend in (duck, influx):
        assert {k for k in backend if k.startswith("rule:")} == {f"rule:{r}" for r in RULES}
        assert all(v > 0 for k, v in backend.items() if k.endswith("_s") or k.startswith("rule:"))
    rows = table(store.report(results, 5, 2))
    for label in ("columns (backfill), readings/s", f"write(Batch) of {store.BATCH:,} records, readings/s"):
        assert number(rows[label][0]) > 0 and number(rows[label][1]) > 0
    whole = rows["one whole evaluation, s"]
    for k, backend in enumerate((duck, influx)):  # the total is the sum of the evaluators
        assert float(whole[k]) == pytest.approx(sum(v for key, v in backend.items() if key.startswith("rule:")),
                                                abs=0.005)


def test_budget_smoke_prices_the_same_days_on_both_stores(influxd) -> None:
    from benchmarks import budget

    results = asyncio.run(budget.measure(6, 1, influx_port=influxd.port))
    duck, influx = results["duckdb"], results["influxdb"]
    assert duck["readings"] == influx["readings"] > 0
    assert duck["points"] == influx["points"] > 0  # the same cost points from the same readings
    assert duck["cost_points"] == influx["cost_points"] == 6 * 3 * 365
    assert duck["over"] == influx["over"]  # the same budget verdicts on the same year
    for backend in (duck, influx):
        assert backend["year_s"] == pytest.approx(backend["pricing_day_s"] * 365) and backend["execution_s"] > 0
    rows = table(budget.report(results, 6))
    assert number(rows["pricing, s per province-day"][0]) >= 0 and rows["cost points written by pricing"][1] != "0"


def test_analytics_speed_smoke_numpy_and_pandas_find_the_same() -> None:
    pytest.importorskip("pandas", reason="pandas is the benchmark's competitor: pip install 'meterwatch[bench]'")
    results = analytics_speed.measure(300)
    assert set(results) == {"floor", "numpy", "pandas"}
    rules = {"silent", "leak", "burst", "meter_fault", "overuse"}
    found = {variant: {k: results[variant][k] for k in rules} for variant in ("numpy", "pandas")}
    assert found["numpy"] == found["pandas"]  # the same alerts from both ways of computing the features
    water_meters = 300 // 3
    assert 0 < found["numpy"]["leak"] <= water_meters  # night flow above the threshold somewhere, water only
    assert all(r["seconds"] > 0 and r["input_mb"] > 0 for r in results.values())
    assert "pandas the same" in analytics_speed.report(results, 300)


def test_analytics_accuracy_smoke_finds_the_injected_faults_and_nothing_else() -> None:
    report = asyncio.run(analytics_accuracy.run(20, 8, 24.0, None))
    backfilled, evaluations = re.search(r"\(([\d,]+) readings backfilled .* (\d+) evaluations", report).groups()
    assert number(backfilled) > 0 and int(evaluations) == 2  # day 7 and day 8, every 24 h
    rows = table(report)
    figures = {}
    for rule in ("leak", "burst", "silent", "meter_fault", "sorting"):
        faults, alerts, recall, precision = rows[rule][:4]
        faults, alerts, recall, precision = int(faults), int(alerts), float(recall), float(precision)
        assert math.isnan(recall) == (faults == 0) and math.isnan(precision) == (alerts == 0)
        assert all(0 <= x <= 1 for x in (recall, precision) if not math.isnan(x))
        figures[rule] = (faults, alerts, recall, precision)
    # The seeded 20-institution province, 8 days: one silent meter and one sorting fault old enough to be
    # seen, both caught, and no alert of any rule without its fault.
    nan = (0, 0)
    assert {r: f[:2] for r, f in figures.items()} == {"leak": nan, "burst": nan, "silent": (1, 1),
                                                       "meter_fault": nan, "sorting": (1, 1)}
    assert figures["silent"][2:] == figures["sorting"][2:] == (1.0, 1.0)


def test_delivery_smoke_one_digest_per_contact() -> None:
    from benchmarks import delivery

    rows = table(asyncio.run(delivery.run(20, 0.05, 1)))
    assert number(rows["evaluation without contacts"][0].split()[0]) > 0
    sent = rows["messages sent, last run"][0]
    reached = int(re.search(r"to (\d+) of", sent).group(1))
    assert sent.startswith(f"{reached} to {reached} of 12 contacts") and sent.endswith("most to one contact: 1)")


def test_bench_command_rejects_an_unknown_suite(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "--only", "nothing"])
    assert "invalid choice" in capsys.readouterr().err


def test_import_smoke_stores_every_row_once() -> None:
    from benchmarks import imports

    report = asyncio.run(imports.run(2_000, 10))
    rows = table(report)
    assert [number(c) for c in rows["first"][:4]] == [2_000, 2_000, 0, 0]  # rows, stored, already stored, refused
    assert [number(c) for c in rows["again (all duplicates)"][:4]] == [2_000, 0, 2_000, 0]
    assert number(rows["first"][5]) > 0
    assert "(2,000 readings in the store)" in report


def test_province10x_smoke_builds_both_stores_alike_and_evaluates_every_rule(influxd) -> None:
    from benchmarks import province10x

    r = province10x.measure(30, 2, influx_port=influxd.port)
    assert r["load"]["devices"] == r["devices"] > r["meters"] > 0  # every generated device loads, no problem
    duck, influx = r["duckdb"], r["influxdb"]
    assert duck["backfill"]["readings"] == influx["backfill"]["readings"] > 0
    for backend in (duck, influx):
        evaluation = backend["evaluate"]
        assert evaluation["eval0_ran"] == evaluation["eval1_ran"] == len(RULES)
        assert evaluation["eval0_failed"] == evaluation["eval1_failed"] == []  # pricing and every rule ran
        assert evaluation["peak_mb"] >= evaluation["registry_mb"] > 0
        assert backend["baseline"]["found"] == backend["baseline"]["devices"] == r["meters"]  # every meter's baseline
    assert duck["evaluate"]["open_alerts"] == influx["evaluate"]["open_alerts"]  # the same verdicts on both
    assert r["histories"]["devices"] == r["meters"] and r["histories"]["readings"] == 96
    rows = table(province10x.report(r))
    assert rows["readings backfilled"] == [f"{duck['backfill']['readings']:,}"] * 2
    assert rows["failed steps"] == ["none", "none"]
