import numpy as np

from analytics.statistics import intensities


def test_ranks_yoy_and_implausible_figures():
    use = np.array([100.0, 300.0, 200.0, 5000.0, 0.0, 150.0])
    stats = intensities(
        use=use, last_year=np.array([80.0, 300.0, np.nan, 100.0, 50.0, 150.0]),
        occupants=np.array([10, 10, 10, 10, 10, 0]), area=np.array([100.0, 100, 100, 100, 100, 100]),
        types=np.array(["office"] * 5 + ["venue"]), cities=np.array(["yinchuan", "yinchuan", "guyuan", "guyuan",
                                                                      "guyuan", "guyuan"]),
        reporting=np.array([True, True, True, True, True, True]))
    assert stats.per_m2.tolist() == [1.0, 3.0, 2.0, 50.0, 0.0, 1.5]
    assert np.isnan(stats.per_capita[5])  # no occupants: no per-capita figure, not a crash
    assert stats.rank_type.tolist()[:5] == [2, 4, 3, 5, 1]
    assert stats.rank_type_city.tolist()[:5] == [1, 2, 2, 3, 1]
    assert stats.rank_type_capita.tolist()[:5] == [2, 4, 3, 5, 1] and np.isnan(stats.rank_type_capita[5])
    assert np.allclose(stats.yoy[[0, 1]], [0.25, 0.0]) and np.isnan(stats.yoy[2])
    assert stats.flag.tolist() == ["", "", "", "far from the type's median", "no use although meters report",
                                   "registry gives no occupants or floor area"]
