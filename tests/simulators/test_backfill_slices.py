"""The backfill writes a slice of the fleet at a time (memory bounded at 240,000 devices): the same readings."""

from __future__ import annotations

import numpy as np

from meterwatch.localtime import DAY
from simulators.backfill import chunk_columns
from simulators.meters import FleetModel
from simulators.province import generate_province


def test_slices_of_the_fleet_hold_the_readings_of_the_whole_day_in_the_same_order() -> None:
    province = generate_province(12, seed=4)
    end = 1_790_035_200
    whole_model, sliced_model = (FleetModel(province, end - DAY, end, seed=4) for _ in range(2))
    n = len(whole_model.devices)
    state = [(np.full(n, np.nan), np.zeros(n, dtype=np.int64)) for _ in range(2)]
    for whole_chunk, sliced_chunk in zip(whole_model.chunks(), sliced_model.chunks(), strict=True):
        whole = list(chunk_columns(whole_model, whole_chunk, *state[0]))
        parts = list(chunk_columns(sliced_model, sliced_chunk, *state[1], devices_per_write=7))
        assert len(whole) == 1 and len(parts) == -(-n // 7)  # one write a slice of 7 meters
        assert sum(len(p["device"]) for p in parts) == len(whole[0]["device"]) > 0
        for name, column in whole[0].items():
            joined = [v for p in parts for v in (p[name].tolist() if isinstance(p[name], np.ndarray) else p[name])]
            expected = column.tolist() if isinstance(column, np.ndarray) else column
            assert joined == expected or np.allclose(joined, expected, equal_nan=True), name
    assert np.array_equal(state[0][0], state[1][0], equal_nan=True)  # the same registers carried to the next day
