"""`meterwatch report`: the JSON contract from the command line, and bad input refused in one line (exit 2)."""

from __future__ import annotations

import json

import pytest

from meterwatch_cli.main import main


def test_report_json_holds_the_contract_keys(setup, tmp_path, capsys):
    setup()
    out = tmp_path / "out" / "yinchuan-2026-10.json"
    assert main(["report", "--period", "2026-10", "--scope", "city:yinchuan", "--out", str(out),
                 "--at", "2026-11-05T18:00:00+08:00"]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert (report["period"], report["scope"], report["scope_name"]) == ("2026-10", "city:yinchuan", "银川")
    assert report["totals"]["electricity_kwh"] == 3107.0 + 31 * 50.0
    assert set(report["totals"]) >= {"electricity_kwh", "water_m3", "heat_gj", "energy_kgce"}
    assert [r["institution"] for r in report["institutions"]] == ["inst-a", "inst-b"]
    assert {"institution", "electricity_kwh", "water_m3", "heat_gj", "energy_kgce"} <= set(report["institutions"][0])
    assert {r["check"] for r in report["quality"]} >= {"missing_days", "jump"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--period", "2099-01"], "it is in the future"),
    (["--period", "2026-13"], "expected a month 2026-10"),
    (["--period", "2026-10", "--scope", "city:atlantis"], "unknown city 'atlantis'"),
    (["--period", "2026-10", "--scope", "institution:nobody"], "unknown institution 'nobody'"),
    (["--period", "2026-10", "--scope", "county:x"], "expected province, city:ID or institution:ID"),
    (["--period", "2026-10", "--at", "yesterday"], "bad --at"),
    (["--period", "2026-10", "--at", "2099-01-01T00:00:00Z"], "is in the future"),
    (["--period", "2026-10", "--out", "report.doc"], "cannot tell the format"),
    (["--scope", "province"], "needs --period and --out"),
])
def test_bad_input_exits_2_with_one_line(setup, tmp_path, capsys, argv, message):
    if "--out" not in argv and "--period" in argv:
        argv = [*argv, "--out", str(tmp_path / "r.json")]
    assert main(["report", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r.json").exists()


def test_empty_store_and_an_institution_without_data_say_why(setup, tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["report", "--period", "2026-10", "--scope", "institution:inst-c", "--out", str(out)]) == 0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["totals"]["energy_kgce"] == 0.0 and report["alerts"] == [] and report["standing"] == []
    assert any("no data in the store for institution:inst-c" in n for n in report["notes"])
    assert any("without a quota for electricity" in n for n in report["notes"])
    assert report["garbage"]["why_empty"] == "no weighing in the period for this scope"
    assert [r["check"] for r in report["quality"]] == ["registry", "silent"]  # its water meter never reported
    assert "note: no data in the store" in capsys.readouterr().err
