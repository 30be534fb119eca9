"""Tariffs: hand-computed prices of profiles, band splits across midnight, price changes and surcharges."""

from __future__ import annotations

from datetime import date

import numpy as np
import pytest

from meterwatch.const import DEFAULT_CITIES, INSTITUTION_TYPES
from meterwatch.localtime import midnight_of
from meterwatch.registry.model import Institution
from meterwatch.registry.tariffs import load_tariffs, price_electricity, price_heat, price_water, season_length

OFFICE = Institution("inst-a", "甲单位", "yinchuan", "office", "", 1000.0, 50)
SCHOOL = Institution("inst-b", "乙学校", "guyuan", "education", "", 2000.0, 400)

SAMPLE = """\
[[electricity]]
from = 2026-01-01
price = { sharp = 1.10, peak = 0.95, flat = 0.62, valley = 0.30 }
bands = { sharp = ["19:00-21:00"], peak = ["08:00-11:00", "17:00-19:00", "21:00-23:00"], valley = ["23:00-07:00"] }

[[water]]
from = 2026-01-01
price = 4.40
surcharge = [ { above = 0.0, factor = 1.5 }, { above = 0.2, factor = 2.0 } ]

[[heat]]
from = 2026-01-01
basis = "gj"
price = 45.0
"""


def load(text: str):
    tariffs, problems = load_tariffs(text, DEFAULT_CITIES, INSTITUTION_TYPES)
    assert problems == [], [str(p) for p in problems]
    return tariffs


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> int:
    return midnight_of(date(y, m, d)) + hh * 3600 + mm * 60


def test_a_days_flat_profile_splits_over_the_bands_by_hours():
    """4 kWh every hour for a day: sharp 2 h, peak 7 h, valley 8 h (23-07 across midnight), flat the other 7."""
    t = load(SAMPLE)
    ends = local(2026, 10, 1) + 900 * np.arange(1, 97)
    split, cost = price_electricity(t.timeline("electricity", OFFICE), ends - 900, ends, np.full(96, 1.0))
    assert split.sum(axis=0) == pytest.approx([8.0, 28.0, 28.0, 32.0])
    assert cost.sum() == pytest.approx(8 * 1.10 + 28 * 0.95 + 28 * 0.62 + 32 * 0.30)  # 62.36 yuan


def test_an_interval_across_midnight_is_spread_evenly_over_its_bands():
    """22:30 -> 00:30, 4 kWh: half an hour of peak (1 kWh), then 1.5 h of valley (3 kWh)."""
    t = load(SAMPLE)
    split, cost = price_electricity(t.timeline("electricity", OFFICE), np.array([local(2026, 10, 1, 22, 30)]),
                                      np.array([local(2026, 10, 2, 0, 30)]), np.array([4.0]))
    assert split[0] == pytest.approx([0.0, 1.0, 0.0, 3.0])
    assert cost[0] == pytest.approx(1 * 0.95 + 3 * 0.30)


def test_a_price_change_in_the_middle_of_a_month_reprices_from_its_date():
    """Flat 0.50 until 15 March, 0.60 from 16 March: 24 kWh from noon to noon is 12 at each price."""
    t = load('[[electricity]]\nfrom = 2026-01-01\nprice = { flat = 0.50 }\n\n'
             '[[electricity]]\nfrom = 2026-03-16\nprice = { flat = 0.60 }\n')
    _, cost = price_electricity(t.timeline("electricity", OFFICE), np.array([local(2026, 3, 15, 12)]), np.array([local(2026, 3, 16, 12)]),
                                  np.array([24.0]))
    assert cost[0] == pytest.approx(12 * 0.50 + 12 * 0.60)
    _, before = price_electricity(t.timeline("electricity", OFFICE), np.array([local(2025, 12, 31, 23)]), np.array([local(2026, 1, 1, 1)]),
                                    np.array([2.0]))
    assert np.isnan(before[0])  # half of it has no tariff: not guessed


def test_the_most_specific_schedule_wins_then_the_latest():
    t = load('[[water]]\nfrom = 2026-01-01\nprice = 4.0\n\n'
             '[[water]]\nfrom = 2026-07-01\ncities = ["yinchuan"]\nprice = 5.0\n\n'
             '[[water]]\nfrom = 2026-03-01\ntypes = ["office"]\nprice = 6.0\n\n'
             '[[water]]\nfrom = 2026-09-01\nprice = 4.5\n')
    assert t.schedule_for("water", OFFICE, date(2026, 2, 1)).price == 4.0
    assert t.schedule_for("water", OFFICE, date(2026, 8, 1)).price == 6.0  # type beats city
    assert t.schedule_for("water", SCHOOL, date(2026, 8, 1)).price == 4.0
    assert t.schedule_for("water", SCHOOL, date(2026, 9, 1)).price == 4.5
    assert t.schedule_for("water", OFFICE, date(2025, 12, 31)) is None


@pytest.mark.parametrize(("used", "expected"), [
    (90.0, 90 * 4.4),                                  # within the quota
    (115.0, 100 * 4.4 + 15 * 4.4 * 1.5),                # 15 % over: all at x1.5
    (130.0, 100 * 4.4 + 20 * 4.4 * 1.5 + 10 * 4.4 * 2), # 20 % at x1.5, the rest at x2 (660 yuan)
])
def test_water_surcharge_tiers_above_the_monthly_quota(used, expected):
    t = load(SAMPLE)
    days = np.arange(30) + (local(2026, 4, 1) + 8 * 3600) // 86400
    daily = price_water(t.timeline("water", OFFICE), days, np.full(30, used / 30), 100.0)
    assert daily.sum() == pytest.approx(expected)
    assert daily[0] == pytest.approx(used / 30 * 4.4)  # the first day is within the quota


def test_heat_by_gj_and_by_floor_area_over_the_season():
    t = load(SAMPLE + '\n[[heat]]\nfrom = 2026-10-01\nbasis = "m2"\nprice = 30.0\nseason = ["11-01", "03-31"]\n')
    day = (local(2026, 3, 10) + 8 * 3600) // 86400
    assert price_heat(t.timeline("heat", OFFICE), np.array([day]), np.array([10.0]), OFFICE.floor_area_m2)[0] == pytest.approx(450.0)
    season = (local(2026, 11, 1) + 8 * 3600) // 86400 + np.arange(151)  # 1 Nov 2026 .. 31 Mar 2027
    daily = price_heat(t.timeline("heat", OFFICE), season, np.zeros(151), OFFICE.floor_area_m2)
    assert daily.sum() == pytest.approx(1000 * 30.0)  # the whole season is area x price
    assert daily[61:92].sum() == pytest.approx(31 * 30000 / 151)  # January 2027
    summer = (local(2026, 10, 15) + 8 * 3600) // 86400
    assert price_heat(t.timeline("heat", OFFICE), np.array([summer]), np.array([0.0]), OFFICE.floor_area_m2)[0] == 0.0
    assert season_length(date(2028, 1, 10), ((11, 1), (3, 31))) == 152  # leap February


@pytest.mark.parametrize(("text", "line", "message"), [
    ('[[electricity]]\nfrom = 2026-01-01\nprice = { flat = 0.6, peak = 0.9 }\n'
     'bands = { peak = ["08:00-12:00", "11:00-13:00"] }\n', 4, "overlaps"),
    ('[[electricity]]\nfrom = 2026-01-01\nprice = { flat = 0.6, peak = 0.9 }\nbands = { peak = ["8:00-25:00"] }\n',
     4, "bad time span"),
    ('[[electricity]]\nfrom = 2026-01-01\nprice = { flat = 0.6 }\nbands = { valley = ["23:00-07:00"] }\n',
     3, "no price for the valley band"),
    ("[[water]]\nprice = 4.4\n", 1, "needs from"),
    ("[[water]]\nfrom = 2026-01-01\nprice = -4.4\n", 3, "negative price"),
    ("[[gas]]\nfrom = 2026-01-01\nprice = 3.0\n", 1, "unknown tariff kind"),
    ('[[heat]]\nfrom = 2026-01-01\nbasis = "room"\nprice = 3.0\n', 3, "heat basis"),
    ('[[water]]\nfrom = 2026-01-01\ncities = ["lanzhou"]\nprice = 3.0\n', 3, "unknown city"),
    ('[[water]]\nfrom = 2026-01-01\nprice = 3.0\nsurcharge = [ { above = 0.2, factor = 0.5 } ]\n', 4, "factor >= 1"),
    ("[[water]]\nfrom = 2026-01-01\nprice = 3.0\n[[water]]\nfrom = 2026-01-01\nprice = 4.0\n", 4, "a second water"),
    ("[[water]\nfrom = 2026-01-01\n", 1, "not valid TOML"),
])
def test_bad_tariffs_are_reported_with_file_and_line(text, line, message):
    _, problems = load_tariffs(text, DEFAULT_CITIES, INSTITUTION_TYPES)
    assert any(p.line == line and message in p.message for p in problems), [str(p) for p in problems]
    assert all(str(p).startswith("tariffs.toml:") for p in problems)


def test_registry_check_reports_tariff_problems_and_keeps_the_good_schedules(tmp_path, capsys):
    from meterwatch.registry import load_registry
    from meterwatch_cli.main import main

    (tmp_path / "institutions.csv").write_text("id,name,city,type,subclass,floor_area_m2,occupants\n"
                                               "inst-a,甲单位,yinchuan,office,,1000,50\n", encoding="utf-8")
    (tmp_path / "devices.csv").write_text("id,institution,kind,unit,multiplier,address\n"
                                          "a-w1,inst-a,water,m3,1,\n", encoding="utf-8")
    (tmp_path / "tariffs.toml").write_text(SAMPLE + "\n[[water]]\nfrom = 2026-07-01\nprice = -1\n", encoding="utf-8")
    registry, problems = load_registry(tmp_path)
    assert [str(p) for p in problems] == ["tariffs.toml:18: water price: negative price -1"]
    assert registry.tariffs is not None and len(registry.tariffs.schedules["water"]) == 1  # the good one kept
    assert main(["registry", "check", "--dir", str(tmp_path)]) == 1
    assert f"{tmp_path / 'tariffs.toml'}:18: water price: negative price -1" in capsys.readouterr().out


def test_the_surcharge_can_apply_to_the_water_part_of_the_price_only():
    """4.92 all in, of which 3.30 is water: 130 m3 against 100 is 100 x 4.92 + 20 x (4.92 + 0.5 x 3.30)
    + 10 x (4.92 + 1.0 x 3.30)."""
    t = load('[[water]]\nfrom = 2026-01-01\nprice = 4.92\nsurcharge_on = 3.30\n'
             'surcharge = [ { above = 0.0, factor = 1.5 }, { above = 0.2, factor = 2.0 } ]\n')
    days = np.arange(30) + (local(2026, 4, 1) + 8 * 3600) // 86400
    expected = 100 * 4.92 + 20 * (4.92 + 0.5 * 3.30) + 10 * (4.92 + 1.0 * 3.30)
    assert price_water(t.timeline("water", OFFICE), days, np.full(30, 130 / 30), 100.0).sum() == pytest.approx(expected)


def test_the_shipped_sample_loads_clean_and_prices_schools_lower():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "examples/registry/tariffs.toml").read_text(encoding="utf-8")
    t = load(text)
    assert t.schedule_for("water", SCHOOL, date(2026, 5, 1)).price == 3.11
    assert t.schedule_for("water", OFFICE, date(2026, 5, 1)).price == 4.92
    ends = local(2026, 10, 1) + 3600 * np.arange(1, 25)
    split, _ = price_electricity(t.timeline("electricity", OFFICE), ends - 3600, ends, np.ones(24))
    assert split.sum(axis=0) == pytest.approx([0.0, 8.0, 8.0, 8.0])  # published: 8 h each of peak, flat, valley


def test_the_surcharge_accrues_on_the_days_that_pass_the_quota_and_a_price_change_counts_from_its_day():
    """Quota 100 m3/month. 60 m3 on 1 April (4.40), 60 m3 on 20 April (5.00 from 15 April): the second day
    has 40 m3 within the quota and 20 m3 in the first tier (x1.5)."""
    t = load(SAMPLE + '\n[[water]]\nfrom = 2026-04-15\nprice = 5.00\n'
                      'surcharge = [ { above = 0.0, factor = 1.5 }, { above = 0.2, factor = 2.0 } ]\n')
    first = (local(2026, 4, 1) + 8 * 3600) // 86400
    cost = price_water(t.timeline("water", OFFICE), np.array([first, first + 19]), np.array([60.0, 60.0]), 100.0)
    assert cost[0] == pytest.approx(60 * 4.40)
    assert cost[1] == pytest.approx(40 * 5.00 + 20 * 5.00 * 1.5)


def test_budget_rows_are_checked_line_by_line(tmp_path):
    from meterwatch.registry import load_registry

    (tmp_path / "institutions.csv").write_text("id,name,city,type,subclass,floor_area_m2,occupants\n"
                                               "inst-a,甲单位,yinchuan,office,,1000,50\n", encoding="utf-8")
    (tmp_path / "devices.csv").write_text("id,institution,kind,unit,multiplier,address\n"
                                          "a-w1,inst-a,water,m3,1,\n", encoding="utf-8")
    (tmp_path / "budgets.csv").write_text("institution,year,kind,yuan\n"
                                          "inst-a,2026,electricity,120000\n"   # 2 ok
                                          "inst-x,2026,water,5000\n"           # 3 unknown institution
                                          "inst-a,2026,gas,100\n"              # 4 unknown kind
                                          "inst-a,2026,water,-5\n"             # 5 negative
                                          "inst-a,2026,electricity,1\n",       # 6 duplicate
                                          encoding="utf-8")
    registry, problems = load_registry(tmp_path)
    assert [(p.file, p.line) for p in problems] == [("budgets.csv", 3), ("budgets.csv", 4), ("budgets.csv", 5),
                                                     ("budgets.csv", 6)]
    assert "unknown institution" in problems[0].message and "a second budget" in problems[3].message
    assert registry.budgets == {("inst-a", 2026, "electricity"): 120000.0}


def test_emission_factor_rows_are_checked_and_bad_ones_never_break_pricing(tmp_path):
    from analytics.costs import Emission
    from meterwatch.registry import load_registry

    (tmp_path / "institutions.csv").write_text("id,name,city,type,subclass,floor_area_m2,occupants\n"
                                               "inst-a,甲单位,yinchuan,office,,1000,50\n", encoding="utf-8")
    (tmp_path / "devices.csv").write_text("id,institution,kind,unit,multiplier,address\n"
                                          "a-w1,inst-a,water,m3,1,\n", encoding="utf-8")
    (tmp_path / "quotas.toml").write_text("[[conversion.emission]]\nfrom = 2022-01-01\ngrid_kgco2_per_kwh = 0.6423\n"
                                          "heat_kgco2_per_gj = 110.0\n\n"
                                          "[[conversion.emission]]\nfrom = 2025-01-01\ngrid_kgco2_per_kwh = \"x\"\n"
                                          "heat_kgco2_per_gj = 110.0\n", encoding="utf-8")
    registry, problems = load_registry(tmp_path)
    assert [str(p) for p in problems] == ["quotas.toml:6: [[conversion.emission]] grid_kgco2_per_kwh must be a "
                                          "number >= 0, not 'x'"]
    steps = Emission.from_quotas(registry.quotas).steps
    assert steps == ((date(2022, 1, 1), 0.6423, 110.0),)  # the good row; the bad one left out, no crash
