"""Dashboards as files: what ``dashboards build`` writes is what a Grafana can mount, and is well formed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import yaml

from dashboards.boards import all_boards
from dashboards.grafana import Dashboard, Panel, Query, Variable
from dashboards.provisioning import build, datasource_ref
from dashboards.validate import expand, parse_time, structural_problems
from meterwatch_cli.main import main
from meterwatch.settings import Settings
from scenarios.facts import analytics_facts

SETTINGS = Settings(store="influxdb://influx.example:8086/meterwatch", store_user="grafana",
                    store_password="s3cret-pw")


def test_build_writes_a_mountable_provisioning_directory(tmp_path: Path) -> None:
    built = build(SETTINGS, tmp_path, analytics_facts(SETTINGS))
    boards = sorted(p.name for p in (tmp_path / "dashboards" / "meterwatch").glob("*.json"))
    assert boards == ["mw-alerts.json", "mw-collector.json", "mw-garbage.json", "mw-institution.json",
                      "mw-province.json"]
    source = yaml.safe_load((tmp_path / "datasources" / "meterwatch.yaml").read_text(encoding="utf-8"))
    ds = source["datasources"][0]
    assert (ds["type"], ds["uid"], ds["url"], ds["jsonData"]["dbName"]) == (
        "influxdb", "meterwatch-influxdb", "http://influx.example:8086", "meterwatch")
    assert ds["secureJsonData"]["password"] == "$METERWATCH_STORE_PASSWORD"  # Grafana expands it
    provider = yaml.safe_load((tmp_path / "dashboards" / "meterwatch.yaml").read_text(encoding="utf-8"))["providers"][0]
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards/meterwatch"
    assert provider["folderUid"] == "meterwatch"
    for path in built.files:
        assert "s3cret-pw" not in path.read_text(encoding="utf-8")
    doc = json.loads((tmp_path / "dashboards" / "meterwatch" / "mw-province.json").read_text(encoding="utf-8"))
    assert doc["title"].startswith("全省概览") and doc["timezone"] == "Asia/Shanghai"
    assert "CREATE CONTINUOUS QUERY" in (tmp_path / "rollups.influxql").read_text(encoding="utf-8")


def test_shipped_dashboards_have_no_structural_problem() -> None:
    boards = all_boards(SETTINGS, analytics_facts(SETTINGS))
    docs = [b.to_json(datasource_ref(SETTINGS)) for b in boards]
    assert structural_problems(boards, {"meterwatch-influxdb"}, docs) == []
    assert len(boards) == 5 and sum(len(b.panels()) for b in boards) >= 50
    for board in boards:  # Chinese first, English beside it
        assert any("\u4e00" <= ch <= "\u9fff" for ch in board.title.split()[0])
        for panel in board.panels():
            assert any("\u4e00" <= ch <= "\u9fff" for ch in panel.title), panel.title


def test_structural_check_catches_overlap_unknown_variable_and_datasource() -> None:
    q = Query('SELECT sum("x") FROM "reading" WHERE "city" = \'$nowhere\' AND $timeFilter', ("sum",))
    a = Panel("甲 A", "stat", (q,), width=24)
    board = Dashboard("dup", "测试 Test", "", rows=((a,),), variables=(Variable("city", "城市", "SHOW TAG VALUES"),))
    doc = board.to_json({"type": "influxdb", "uid": "elsewhere"})
    doc["panels"].append({**doc["panels"][0], "id": 1, "title": "乙 B"})  # same id, same place
    problems = structural_problems([board, replace(board, title="again")], {"meterwatch-influxdb"},
                                   [doc, board.to_json({"type": "influxdb", "uid": "meterwatch-influxdb"})])
    text = "\n".join(problems)
    assert "uid 'dup' used twice" in text
    assert "panel id 1 used twice" in text
    assert "'乙 B' overlaps '甲 A'" in text
    assert "datasource 'elsewhere'" in text
    assert "$nowhere used but not defined" in text


def test_layout_flows_panels_without_overlap() -> None:
    wide = Panel("宽 Wide", "stat", (), width=16, height=4)
    board = Dashboard("x", "x", "", rows=((wide, wide), (wide,)))
    positions = [pos for _, pos, _ in board.placed()]
    assert positions == [{"x": 0, "y": 0, "w": 16, "h": 4}, {"x": 0, "y": 4, "w": 16, "h": 4},
                         {"x": 0, "y": 8, "w": 16, "h": 4}]


def test_time_expressions_follow_the_province_calendar() -> None:
    now = 1_795_600_000  # 2026-11-25 17:46:40 China time
    assert parse_time("now/d", now) == 1_795_536_000  # 2026-11-25 00:00 +08:00
    assert parse_time("now/M", now) == 1_793_462_400  # 2026-11-01 00:00 +08:00
    assert parse_time("now/y", now) == 1_767_196_800  # 2026-01-01 00:00 +08:00
    assert parse_time("now-7d", now) == now - 7 * 86400
    text = expand(Query('SELECT 1 FROM "r" WHERE "city" =~ /^$city$/ AND $timeFilter GROUP BY time($__interval)',
                        ()), {"city": "yinchuan"}, 10, 20, 3600)
    assert text == 'SELECT 1 FROM "r" WHERE "city" =~ /^yinchuan$/ AND time >= 10s AND time <= 20s GROUP BY time(3600s)'


def test_cli_build(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("METERWATCH_STORE", "influxdb://127.0.0.1:8086/meterwatch")
    assert main(["dashboards", "build", "--out", str(tmp_path / "out")]) == 0
    assert len(list((tmp_path / "out" / "dashboards" / "meterwatch").glob("*.json"))) == 5


def test_cli_build_refuses_a_store_grafana_cannot_read(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("METERWATCH_STORE", "duckdb:///tmp/x.duckdb")
    assert main(["dashboards", "build", "--out", str(tmp_path / "out")]) == 2
    assert "dashboards read InfluxDB" in capsys.readouterr().err
