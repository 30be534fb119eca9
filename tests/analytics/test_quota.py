import tomllib
from pathlib import Path

import numpy as np

from analytics.quota import GBT2589, QuotaTable, crossing_day, elapsed_share, energy_kgce, project, status
from meterwatch.registry import Institution

ROOT = Path(__file__).resolve().parents[2]
OFFICE = Institution("o1", "一号楼", "yinchuan", "office", "township", 2000.0, 100)
EMPTY = Institution("o2", "空楼", "yinchuan", "office", "bureau", 0.0, 0)
VENUE = Institution("v1", "体育馆", "yinchuan", "venue", "stadium", 20000.0, 50)

TABLE = QuotaTable({
    "type": {"office": {"electricity": {"per": "m2", "constraint": 70, "guide": 50},
                        "water": {"per": "capita", "constraint": 20, "guide": 14},
                        "subclass": {"township": {"electricity": {"per": "m2", "constraint": 55, "guide": 40}}}}},
    "institution": {"o1": {"water": {"per": "institution", "constraint": 1500, "guide": 1000}}},
})


def test_most_specific_quota_wins_and_annual_amounts_scale_with_the_building():
    water, electricity = TABLE.quota(OFFICE, "water"), TABLE.quota(OFFICE, "electricity")
    assert water.source == "institution.o1.water" and water.annual(OFFICE) == (1500, 1000)
    assert electricity.source == "type.office.subclass.township.electricity"
    assert electricity.annual(OFFICE) == (55 * 2000, 40 * 2000)
    assert TABLE.quota(EMPTY, "electricity").annual(EMPTY).startswith("type.office.electricity: per-m2 quota but the registry gives o2 no floor area")


def test_missing_quota_is_a_reason_not_a_crash():
    assert TABLE.quota(VENUE, "water") == "no water quota for type 'venue'"


def test_projection_status_and_crossing_date():
    profile = np.ones(365)
    share = elapsed_share(profile, 73)  # 20% of the year gone
    ytd = np.array([30.0, 15.0, 5.0, 120.0])
    projected = project(ytd, share)
    assert np.allclose(projected, [150.0, 75.0, 25.0, 600.0])
    constraint, guide = np.full(4, 100.0), np.full(4, 60.0)
    assert status(projected, constraint, guide).tolist() == ["over", "between", "guide", "over"]
    days = crossing_day(ytd, projected, constraint, profile, 73)
    assert days[0] == 243 and days[1] == -1 and days[3] == 73  # 30 + 120*(d-73)/292 > 100 from day 243; #4 already over


def test_seasonal_profile_changes_the_projection():
    winter_heavy = np.where(np.arange(365) < 90, 3.0, 1.0)  # Jan-Mar use three times the rest
    flat = elapsed_share(np.ones(365), 90)
    seasonal = elapsed_share(winter_heavy, 90)
    assert seasonal > flat and project(np.array([100.0]), seasonal)[0] < project(np.array([100.0]), flat)[0]


def test_energy_uses_gbt_2589_factors():
    assert GBT2589 == {"electricity_kgce_per_kwh": 0.1229, "heat_kgce_per_gj": 34.12}
    assert np.allclose(energy_kgce(np.array([1000.0]), np.array([2.0]), GBT2589), [122.9 + 68.24])


def test_sample_quotas_file_parses_and_covers_every_type():
    data = tomllib.loads((ROOT / "examples/registry/quotas.toml").read_text(encoding="utf-8"))
    table = QuotaTable(data)
    for kind in ("office", "education", "medical", "justice", "venue"):
        inst = Institution("x", "x", "yinchuan", kind, "", 1000.0, 10)
        assert not isinstance(table.quota(inst, "electricity"), str)
        assert not isinstance(table.quota(inst, "water"), str)


def test_standing_serves_every_institution_and_names_those_without_a_quota() -> None:
    from analytics.quota import standing

    winter = np.r_[np.full(90, 3.0), np.ones(275)]  # offices use three times as much in the first 90 days
    use = np.array([900.0, 50.0, 10.0])  # o1: 1,500 m3 a year; o2: per head, but no occupants; v1: no quota
    st = standing(TABLE, [OFFICE, EMPTY, VENUE], "water", use, {("office", "water"): winter}, day_of_year=73)
    share = winter[:73].sum() / winter.sum()
    assert st.constraint[0] == 1500 and np.isclose(st.share[0], share)
    assert np.isclose(st.projected[0], 900.0 / share)
    assert st.status.tolist() == ["over", "", ""]  # 900 m3 by a 40% share of the year: heading for 2,240
    assert [inst for inst, _ in st.missing] == ["o2", "v1"]
    expected = crossing_day(use[:1], st.projected[:1], st.constraint[:1], winter, 73)[0]
    assert st.crossing[0] == expected and st.crossing[2] == -1


def test_quotas_looked_up_once_per_type_and_subclass_still_give_an_institution_its_own():
    """The lookup is shared by institutions of one type and subclass, except one with a quota of its own."""
    from meterwatch.registry import Institution

    table = QuotaTable({"type": {"office": {"water": {"per": "capita", "constraint": 20.0, "guide": 15.0},
                                            "subclass": {"bureau": {"water": {"per": "capita", "constraint": 30.0}}}}},
                        "institution": {"own": {"water": {"per": "institution", "constraint": 900.0}}}})
    plain = [Institution(f"i{k}", "x", "yinchuan", "office", "ministry", 100.0, 10 + k) for k in range(3)]
    bureau = Institution("b", "x", "yinchuan", "office", "bureau", 100.0, 10)
    own = Institution("own", "x", "yinchuan", "office", "ministry", 100.0, 10)
    assert [table.annual(i, "water") for i in plain] == [(200.0, 150.0), (220.0, 165.0), (240.0, 180.0)]  # per head
    assert table.annual(bureau, "water") == (300.0, 300.0)
    assert table.annual(own, "water") == (900.0, 900.0) and table.quota(own, "water").source == "institution.own.water"
    assert table.quota(plain[0], "energy") == "no energy quota for type 'office'"
