"""Dashboards as files: what ``dashboards build`` writes is what a Grafana can mount, and is well formed."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from dashboards.boards import all_boards
from dashboards.grafana import Dashboard, Panel, Query, Variable
from dashboards.provisioning import build, datasource_ref
from dashboards.validate import CustomAll, expand, parse_time, regex_escape, structural_problems
from meterwatch_cli.main import main
from meterwatch.settings import GrafanaSettings, Settings
from scenarios.facts import analytics_facts

SETTINGS = Settings(store="influxdb://influx.example:8086/meterwatch", store_user="mw_writer",
                    store_password="s3cret-pw", grafana=GrafanaSettings(reader_password="r3ader-pw"))


def test_build_writes_a_mountable_provisioning_directory(tmp_path: Path) -> None:
    built = build(SETTINGS, tmp_path, analytics_facts(SETTINGS))
    boards = sorted(p.name for p in (tmp_path / "dashboards" / "meterwatch").glob("*.json"))
    assert boards == ["mw-alerts.json", "mw-collector.json", "mw-garbage.json", "mw-institution.json",
                      "mw-province.json"]
    source = yaml.safe_load((tmp_path / "datasources" / "meterwatch.yaml").read_text(encoding="utf-8"))
    ds = source["datasources"][0]
    assert (ds["type"], ds["uid"], ds["url"], ds["jsonData"]["dbName"]) == (
        "influxdb", "meterwatch-influxdb", "http://influx.example:8086", "meterwatch")
    # Grafana reads as the read-only user, over GET; its password is expanded by Grafana, never written here.
    assert (ds["user"], ds["jsonData"]["httpMode"]) == ("grafana", "GET")
    assert ds["secureJsonData"] == {"password": "$METERWATCH_GRAFANA__READER_PASSWORD"}
    provider = yaml.safe_load((tmp_path / "dashboards" / "meterwatch.yaml").read_text(encoding="utf-8"))["providers"][0]
    assert provider["options"]["path"] == "/etc/grafana/provisioning/dashboards/meterwatch"
    assert provider["folderUid"] == "meterwatch"
    for path in built.files:
        text = path.read_text(encoding="utf-8")
        assert "s3cret-pw" not in text and "r3ader-pw" not in text and "mw_writer" not in text
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
    assert "$nowhere used unescaped" in text


def test_no_query_puts_a_variable_anywhere_but_in_an_escaped_regex() -> None:
    """No '$var' between quotes (a name with a quote breaks it, a crafted one adds a statement): ${var:regex}."""
    texts = [q.text for b in all_boards(SETTINGS, analytics_facts(SETTINGS)) for p in b.panels() for q in p.queries]
    texts += [v.query for b in all_boards(SETTINGS, analytics_facts(SETTINGS)) for v in b.variables if v.query]
    variable_uses = [t for t in texts if "${" in t]
    assert len(variable_uses) >= 40
    quoted = [t for t in texts if "'$" in t or "\"$" in t or "[[" in t]
    assert not quoted, quoted
    unsafe = Query("SELECT 1 FROM \"x\" WHERE \"name\" = '${name:regex}' AND \"city\" =~ /^$city$/", ())
    board = Dashboard("u", "测试 T", "", rows=((Panel("甲 A", "stat", (unsafe,)),),),
                      variables=(Variable("name", "n", "SHOW TAG VALUES"), Variable("city", "c", "SHOW TAG VALUES")))
    problems = structural_problems([board], {"ds"}, [board.to_json({"type": "influxdb", "uid": "ds"})])
    assert [p.split(" (")[0] for p in problems] == ["u: variable $name used unescaped", "u: variable $city used unescaped"]


def test_expansion_escapes_as_grafanas_regex_format() -> None:
    """escapeRegex of @grafana/data: \\ ^ $ * + ? . ( ) | [ ] { } / get a backslash, nothing else does."""
    assert regex_escape("a\\b^c$d*e+f?g.h(i)j|k[l]m{n}o/p'q\"r;s-t 中") == (
        "a\\\\b\\^c\\$d\\*e\\+f\\?g\\.h\\(i\\)j\\|k\\[l\\]m\\{n\\}o\\/p'q\"r;s-t 中")
    q = Query('SELECT 1 FROM "r" WHERE "name" =~ /^${name:regex}$/ AND "city" =~ /^${city:regex}$/', ())
    assert expand(q, {"name": "x/ ; DROP", "city": ("a.b", "c")}, 0, 0, 1) == (
        'SELECT 1 FROM "r" WHERE "name" =~ /^x\\/ ; DROP$/ AND "city" =~ /^(a\\.b|c)$/')
    assert expand(q, {"name": "n", "city": CustomAll(".*")}, 0, 0, 1).endswith('"city" =~ /^.*$/')
    with pytest.raises(ValueError, match="not expanded with the :regex format"):
        expand(Query("SELECT 1 FROM \"r\" WHERE \"name\" = '$name'", ()), {"name": "O'Brien"}, 0, 0, 1)


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
    text = expand(Query('SELECT 1 FROM "r" WHERE "city" =~ /^${city:regex}$/ AND $timeFilter '
                        'GROUP BY time($__interval)', ()), {"city": "yinchuan"}, 10, 20, 3600)
    assert text == 'SELECT 1 FROM "r" WHERE "city" =~ /^yinchuan$/ AND time >= 10s AND time <= 20s GROUP BY time(3600s)'


def test_cli_build(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("METERWATCH_STORE", "influxdb://127.0.0.1:8086/meterwatch")
    assert main(["dashboards", "build", "--out", str(tmp_path / "out")]) == 0
    assert len(list((tmp_path / "out" / "dashboards" / "meterwatch").glob("*.json"))) == 5


def test_cli_build_refuses_a_store_grafana_cannot_read(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("METERWATCH_STORE", "duckdb:///tmp/x.duckdb")
    assert main(["dashboards", "build", "--out", str(tmp_path / "out")]) == 2
    assert "dashboards read InfluxDB" in capsys.readouterr().err
