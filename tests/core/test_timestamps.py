"""Times as offices write them: local (UTC+8) unless an offset says otherwise."""

from __future__ import annotations

import pytest

from meterwatch.timestamps import parse_local_time

OCT_1_0800_CST = 1790812800  # 2026-10-01T00:00:00Z


@pytest.mark.parametrize("text", ["2026/10/01 08:00", "2026-10-01 08:00", "2026/10/1 8:00", "2026-10-01 08:00:00",
                                  "2026-10-01T00:00:00Z", "2026-10-01T08:00:00+08:00", " 1790812800 "])
def test_local_formats_and_offsets(text: str) -> None:
    assert parse_local_time(text) == OCT_1_0800_CST


@pytest.mark.parametrize("text, says", [("2026/13/01 08:00", "neither RFC 3339 nor a local date"),
                                        ("yesterday", "neither RFC 3339"), ("2026/10/01\x0008:00", "control"),
                                        ("9" * 30, "out of range")])
def test_bad_times_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_local_time(text)
