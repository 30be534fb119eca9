"""Readings held as columns (``ReadingColumns``, the collector's columnar ingest) are stored as the same points would be.

Both real backends, the spool's codec, line protocol and the durable
writer's bisection: whatever the columns go through, what comes out is
what writing the ``ReadingPoint``s would have given.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meterwatch.store import Batch, ReadingColumns, ReadingPoint, open_store
from meterwatch.store.codec import decode_batch, encode_batch
from meterwatch.store.durable import halves
from meterwatch.store.influx import reading_bodies
from meterwatch.store.lineprotocol import line_list, reading_text

T0 = 1_764_000_000


def reading_lines(blocks: list[ReadingColumns]) -> list[str]:
    text = reading_text(blocks)
    return text.split("\n") if text else []


def block(device: str = "d1", first_has_none: bool = True, n: int = 4) -> ReadingColumns:
    """n quarter-hours of a 40x meter: register 40 x (100 + k); consumption 40 a reading, none for the first."""
    ts = np.array([T0 + 900 * k for k in range(n)], dtype=np.int64)
    register = np.array([40.0 * (100 + k) for k in range(n)])
    consumption = np.full(n, 40.0)
    interval_s = np.full(n, 900, dtype=np.int64)
    if first_has_none:
        consumption[0], interval_s[0] = np.nan, -1
    return ReadingColumns(device, "i1", "yinchuan", "office", "electricity", ts, register, consumption, interval_s)


def test_points_of_columns_are_the_readings_by_hand() -> None:
    first, second = block().points()[:2]
    assert first == ReadingPoint("d1", "i1", "yinchuan", "office", "electricity", T0, 4000.0, None, None)
    assert second == ReadingPoint("d1", "i1", "yinchuan", "office", "electricity", T0 + 900, 4040.0, 40.0, 900)


def test_line_protocol_of_columns_is_that_of_the_same_points() -> None:
    blocks = [block(), block("d 2,x=1", first_has_none=False)]  # a device id line protocol must escape
    points = [p for b in blocks for p in b.points()]
    assert reading_lines(blocks) == line_list(ReadingPoint.schema, points)
    assert reading_lines(blocks)[0] == ("reading,city=yinchuan,device=d1,institution=i1,kind=electricity,type=office "
                                        f"register=4000.0 {T0}")


def test_line_protocol_of_columns_writes_floats_as_repr_does_exponents_included() -> None:
    """Registers line protocol gets from ``repr``: plain decimals (written in bulk) and, in a block of their own,
    values repr writes with an exponent (1e+16, 5e-05), which the bulk path leaves to ``repr``."""
    plain = block(first_has_none=False)
    plain = ReadingColumns("d1", "i1", "yinchuan", "office", "electricity", plain.ts,
                           np.array([0.0, 0.1 + 0.2, 123456789012345.6, 1e-4]), np.array([0.0, 0.3, 2 / 3, 1e15]),
                           plain.interval_s)
    odd = ReadingColumns("d2", "i1", "yinchuan", "office", "electricity", plain.ts, np.array([1e16, 5e-05, 1.0, 2.0]),
                         np.full(4, 40.0), plain.interval_s)
    lines = reading_lines([plain, odd])
    assert lines == line_list(ReadingPoint.schema, plain.points() + odd.points())
    assert lines[1].split(" ")[1] == "register=0.30000000000000004,consumption=0.3,interval_s=900i"
    assert lines[4].split(" ")[1] == "register=1e+16,consumption=40.0,interval_s=900i"


def test_spool_codec_writes_columns_as_readings_so_old_spools_and_new_replay_alike() -> None:
    rewrite = ReadingPoint("d1", "i1", "yinchuan", "office", "electricity", T0 + 900, 4040.0, None, 900, "bad_reading")
    batch = Batch(readings=[rewrite], reading_columns=[block()])
    again = decode_batch(encode_batch(batch))
    assert again.reading_columns == [] and again.readings == block().points() + [rewrite]
    assert len(batch) == len(again) == 5 and batch.reading_count() == 5


def test_bisection_splits_columns_into_points() -> None:
    first, second = halves(Batch(reading_columns=[block()]))
    assert first.readings + second.readings == block().points() and not first.reading_columns


@pytest.fixture
async def store(store_url):
    s = open_store(store_url)
    await s.open()
    yield s
    await s.close()


async def test_store_keeps_columns_as_it_keeps_points_and_a_rewrite_among_the_rows_wins(store) -> None:
    """A batch's columns are written before its rows: the row rewriting one of their points is what stays."""
    rewrite = ReadingPoint("d1", "i1", "yinchuan", "office", "electricity", T0 + 1800, 4080.0, None, 900, "bad_reading")
    other = ReadingPoint("d9", "i1", "yinchuan", "office", "electricity", T0, 1.0)
    await store.write(Batch(readings=[rewrite, other], reading_columns=[block(), block("d2", first_has_none=False)]))
    stored = {(p.device, p.ts): p for p in await store.fetch(ReadingPoint)}
    expected = {(p.device, p.ts): p for p in block().points() + block("d2", first_has_none=False).points()}
    expected[("d1", T0 + 1800)] = ReadingPoint("d1", "i1", "yinchuan", "office", "electricity", T0 + 1800, 4080.0,
                                               40.0, 900, "bad_reading")  # a field left out keeps what was stored
    expected[("d9", T0)] = other
    assert stored == expected
    assert stored[("d1", T0)].consumption is None and stored[("d2", T0)].consumption == 40.0


async def test_a_refused_batch_with_columns_is_bisected_down_to_points(store) -> None:
    """The durable writer's path for a refusal: halves of a batch holding columns are points the store takes."""
    first, second = halves(Batch(reading_columns=[block()]))
    for part in (first, second):
        await store.write(part)
    assert sorted(p.ts for p in await store.fetch(ReadingPoint)) == [T0 + 900 * k for k in range(4)]


_FLOATS = st.one_of(st.floats(0, 1e20, allow_nan=False), st.sampled_from([0.0, 1e-5, 5e-05, 1e-4, 1e16, 0.1 + 0.2]))


@st.composite
def _blocks(draw: st.DrawFn) -> list[ReadingColumns]:
    blocks = []
    for k in range(draw(st.integers(1, 5))):
        n = draw(st.integers(0, 6))
        consumption = [draw(st.one_of(_FLOATS, st.just(math.nan))) for _ in range(n)]
        # 2**20 s (12 days) and over: a gap's row is written on its own, not with the usual pieces
        interval_s = [draw(st.sampled_from([-1, 0, 900, 3600, 2**20 - 1, 2**20, 10**7])) for _ in range(n)]
        blocks.append(ReadingColumns(f"d{k % 3}", "i1", "yinchuan", "office", "water",
                                     np.array([T0 + 900 * j for j in range(n)], dtype=np.int64),
                                     np.array([draw(_FLOATS) for _ in range(n)], dtype=np.float64),
                                     np.array(consumption, dtype=np.float64), np.array(interval_s, dtype=np.int64)))
    return blocks


@given(_blocks())
def test_line_protocol_of_many_blocks_at_once_is_that_of_their_points(blocks) -> None:
    """Blocks of any size (none too), fields missing anywhere, exponents among plain decimals."""
    assert reading_lines(blocks) == line_list(ReadingPoint.schema, [p for b in blocks for p in b.points()])


@settings(max_examples=400)
@given(_blocks(), st.integers(60, 1500), st.integers(1, 12), st.booleans())
def test_request_bodies_of_columns_hold_their_lines_in_order_within_both_limits(blocks, max_bytes, max_lines,
                                                                               chinese) -> None:
    """``reading_bodies``: every line once, in order; no body over ``max_lines`` lines, nor over ``max_bytes`` UTF-8
    bytes unless it is a single line (which influxd refuses, and the durable writer's bisection isolates)."""
    if chinese:  # a tag value outside ASCII: bytes and characters differ
        blocks = [ReadingColumns(b.device, "宁夏回族自治区银川市第一中学", b.city, b.type, b.kind, b.ts, b.register, b.consumption,
                                 b.interval_s) for b in blocks]
    bodies = list(reading_bodies(blocks, max_bytes, max_lines))
    assert [line for body in bodies for line in body.split("\n")] == line_list(
        ReadingPoint.schema, [p for b in blocks for p in b.points()])
    for body in bodies:
        lines = body.split("\n")
        assert len(lines) <= max_lines
        assert len(body.encode()) <= max_bytes or len(lines) == 1
