"""Writes in flight at once, on a real influxd: what may overlap does, and order still holds where it matters.

A batch's new readings (columns) go to the store several requests at a
time, and the next batch's while the one before is in flight; rows (a late
reading and the rewrite of the point after it) follow everything written
before them, and acknowledgements keep the order of arrival.  Between the
code and influxd sits ``InfluxFront``: a real HTTP server that forwards every
request to the real influxd, and plays a store that is slow on one body or
overloaded (503) on one, as a test asks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable

import aiohttp
import numpy as np
import pytest
from aiohttp import web

from benchmarks.servers import free_port
from collector.service import BATCHES_IN_FLIGHT, Collector
from meterwatch.settings import CollectorSettings, Settings
from meterwatch.store import Batch, ReadingColumns, ReadingPoint
from meterwatch.store.influx import InfluxStore
from tests.e2e.conftest import until
from tests.helpers import tiny_registry

pytestmark = pytest.mark.servers
T0 = (int(time.time()) // 900) * 900 - 900 * 200  # every reading in the past
HELD_AT_MOST_S = 2.0  # how long the front may keep one body (a slow store), waiting for what a test names


class InfluxFront:
    """A real HTTP server in front of the real influxd; ``on_write`` sees each /write body and may answer first."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = f"http://127.0.0.1:{upstream_port}"
        self.port = free_port()
        self.writes: list[bytes] = []  # /write bodies, in the order they arrived
        self.in_flight = 0
        self.most_in_flight = 0
        self.on_write: Callable[[bytes], object] | None = None  # may return a web.Response (sent instead)
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> InfluxFront:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.close()
        await self._runner.cleanup()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.path == "/write":
            self.writes.append(body)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                answer = self.on_write(body) if self.on_write else None
                if asyncio.iscoroutine(answer):
                    answer = await answer
                if isinstance(answer, web.Response):
                    return answer
                return await self._upstream(request, body)
            finally:
                self.in_flight -= 1
        return await self._upstream(request, body)

    async def _upstream(self, request: web.Request, body: bytes) -> web.Response:
        async with self._http.request(request.method, self.upstream + request.path_qs, data=body,
                                      headers={k: v for k, v in request.headers.items()
                                               if k.lower() in ("authorization", "content-type")}) as resp:
            return web.Response(status=resp.status, body=await resp.read(),
                                content_type=resp.content_type if resp.status != 204 else None)


def lines_of(body: bytes, device: str, ts: int) -> bool:
    """True when ``body`` holds a reading line of ``device`` at ``ts``."""
    tag = f"device={device}".encode()  # these tests' ids need no escaping
    return any(tag in line.split(b" ", 1)[0].split(b",") and line.endswith(f" {ts}".encode())
               for line in body.split(b"\n"))


def payload(readings: list[tuple[int, float]]) -> bytes:
    return json.dumps({"readings": [{"ts": ts, "value": value} for ts, value in readings]}).encode()


@contextlib.asynccontextmanager
async def collector_on(front: InfluxFront, database: str, tmp_path, max_body_bytes: int = 10_000_000,
                       **collector: object) -> AsyncIterator[Collector]:
    """A collector (no broker: messages are handed to ``handle``) writing through ``front``."""
    registry = tiny_registry(tmp_path / "registry")
    settings = Settings(broker="mqtt://127.0.0.1:9", store=f"influxdb://127.0.0.1:{front.port}/{database}",
                        collector=CollectorSettings(spool_dir=tmp_path / "spool", batch_interval_s=3600,
                                                    shutdown_grace_s=5, **collector))
    store = InfluxStore(settings.store, max_body_bytes=max_body_bytes, timeout_s=10)
    collector = Collector(settings, registry, store)
    collector.writer.probe_interval_s = 0.2  # the spool is replayed soon after the store answers again
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        await until(lambda: collector._writer_task is not None, "the collector's writer to start")  # noqa: SLF001
        yield collector
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await store.close()


async def stored(influxd_port: int, database: str, device: str) -> dict[int, tuple[float, float | None]]:
    """(register, consumption) by time of ``device``'s stored readings, read from influxd itself."""
    store = InfluxStore(f"influxdb://127.0.0.1:{influxd_port}/{database}")
    try:
        return {r.ts: (r.register, r.consumption) for r in await store.fetch(ReadingPoint, device=device)}
    finally:
        await store.close()


async def test_a_batch_of_new_readings_is_written_three_requests_at_a_time(influxd, tmp_path):
    """400 readings of two devices in bodies of about 30 lines: the front answers a request only once three
    are waiting (or after ``HELD_AT_MOST_S``), so bodies sent one at a time would never have three at once."""
    blocks = [ReadingColumns(device, "inst-a", "yinchuan", "education", "water",
                             T0 + 900 * np.arange(200, dtype=np.int64), 10.0 + np.arange(200, dtype=np.float64),
                             np.ones(200), np.full(200, 900, dtype=np.int64)) for device in ("a-w1", "b-w1")]
    async with InfluxFront(influxd.port) as front:
        three = asyncio.Event()

        async def hold_until_three(_: bytes) -> None:
            if front.in_flight >= 3:
                three.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(three.wait(), HELD_AT_MOST_S)  # released at once when three are here

        front.on_write = hold_until_three
        store = InfluxStore(f"influxdb://127.0.0.1:{front.port}/columns", max_body_bytes=4000)
        try:
            await store.open()
            await store.write(Batch(reading_columns=blocks))
        finally:
            await store.close()
    assert front.most_in_flight == 3  # several at once, never more than writes_in_flight
    assert len(front.writes) >= 10
    for device in ("a-w1", "b-w1"):
        got = await stored(influxd.port, "columns", device)
        assert got == {T0 + 900 * k: (10.0 + k, 1.0) for k in range(200)}


async def test_a_late_reading_rewrites_a_point_still_in_flight_and_the_rewrite_wins(influxd, tmp_path):
    """Batch 1 holds a-w1's readings 0-19 without 10 (reading 11: 2.0 since reading 9); batch 2 holds the late
    reading 10 (20.5), which makes 10's consumption 1.5 and rewrites 11's to 21 - 20.5 = 0.5, and b-w1's new
    readings.  The store is slow on batch 1's body: batch 2's new readings go meanwhile, its rewrite only after."""
    t = [T0 + 900 * k for k in range(20)]
    acks: list[int] = []
    async with InfluxFront(influxd.port) as front:
        rewrite_arrived = asyncio.Event()
        held: list[bool] = []
        overlapped: list[bool] = []

        async def slow_on_batch_one(body: bytes) -> None:
            if lines_of(body, "a-w1", t[10]):
                rewrite_arrived.set()
            if lines_of(body, "b-w1", t[0]):
                overlapped.append(not rewrite_arrived.is_set() and bool(held) and front.in_flight >= 2)
            if lines_of(body, "a-w1", t[11]) and not held:
                held.append(True)
                with contextlib.suppress(TimeoutError):  # a slow store; a rewrite sent too early arrives meanwhile
                    await asyncio.wait_for(rewrite_arrived.wait(), HELD_AT_MOST_S)

        front.on_write = slow_on_batch_one
        async with collector_on(front, "late", tmp_path) as collector:
            collector.handle("meterwatch/up/inst-a/a-w1/reading",
                             payload([(t[k], 10.0 + k) for k in range(20) if k != 10]), lambda: acks.append(1))
            await collector.flush()
            collector.handle("meterwatch/up/inst-a/a-w1/reading", payload([(t[10], 20.5)]), lambda: acks.append(2))
            collector.handle("meterwatch/up/inst-b/b-w1/reading",
                             payload([(t[k], 5.0 + k) for k in range(20)]), lambda: acks.append(3))
            await collector.flush()
            await until(lambda: len(acks) == 3, "the three messages acknowledged")
    assert overlapped == [True]  # batch 2's new readings were sent while batch 1's body was held
    got = await stored(influxd.port, "late", "a-w1")
    assert got[t[9]] == (19.0, 1.0)
    assert got[t[10]] == (20.5, 1.5)
    assert got[t[11]] == (21.0, 0.5)  # the rewrite, not batch 1's 2.0
    assert len(got) == 20
    assert len(await stored(influxd.port, "late", "b-w1")) == 20
    assert acks == [1, 2, 3]  # acknowledgements in the order of arrival


async def test_batches_in_flight_are_written_at_once_and_acknowledged_in_the_order_of_arrival(influxd, tmp_path):
    """``BATCHES_IN_FLIGHT`` (4) + 1 batches, each a-w1's next ten readings.  The store holds batch 1's body until
    every other batch that may be in flight with it (2, 3 and 4) has sent its own, or ``HELD_AT_MOST_S``: with
    fewer batches in flight they never could all be there at once.  Acknowledgements still come in order, and
    every reading is stored with its consumption (1.0 from one reading to the next; the device's first has none)."""
    batches = BATCHES_IN_FLIGHT + 1
    t = [T0 + 900 * k for k in range(10 * batches)]
    acks: list[int] = []
    async with InfluxFront(influxd.port) as front:
        # batch k's body has arrived (its first reading is t[10 * (k - 1)])
        sent = {k: asyncio.Event() for k in range(2, BATCHES_IN_FLIGHT + 1)}
        there_while_held: list[int] = []

        async def hold_batch_one(body: bytes) -> None:
            for k, event in sent.items():
                if lines_of(body, "a-w1", t[10 * (k - 1)]):
                    event.set()
            if lines_of(body, "a-w1", t[0]):
                with contextlib.suppress(TimeoutError):  # released at once when all the others are here
                    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in sent.values())), HELD_AT_MOST_S)
                there_while_held.extend(k for k, event in sent.items() if event.is_set())

        front.on_write = hold_batch_one
        async with collector_on(front, "four", tmp_path) as collector:
            for k in range(batches):
                collector.handle("meterwatch/up/inst-a/a-w1/reading",
                                 payload([(t[i], 10.0 + i) for i in range(10 * k, 10 * k + 10)]),
                                 lambda k=k: acks.append(k + 1))
                await collector.flush()
            await until(lambda: len(acks) == batches, "every message acknowledged")
    assert there_while_held == list(sent)
    assert acks == list(range(1, batches + 1))
    assert await stored(influxd.port, "four", "a-w1") == {ts: (10.0 + i, None if i == 0 else 1.0)
                                                         for i, ts in enumerate(t)}


async def test_an_overloaded_body_among_several_in_flight_spools_the_whole_batch_and_the_next(influxd, tmp_path):
    """Batch 1 is about 12 bodies of new readings, three in flight; the store answers 503 to its second body.
    Batch 1 goes to the spool whole, batch 2 behind it (its new readings may be stored already: harmless);
    every acknowledgement comes after its batch is on disk, in order; the replay then stores everything."""
    t = [T0 + 900 * k for k in range(120)]
    acks: list[tuple[int, int]] = []  # (message, batches in the spool when it was acknowledged)
    async with InfluxFront(influxd.port) as front:
        refused: list[bytes] = []

        def overloaded_once(body: bytes) -> web.Response | None:
            if not refused and len(front.writes) >= 2 and b"reading," in body:
                refused.append(body)
                return web.Response(status=503, text='{"error":"overloaded"}')
            return None

        async with collector_on(front, "overload", tmp_path, max_body_bytes=4000) as collector:
            front.on_write = overloaded_once
            for n, (device, inst) in enumerate((("a-w1", "inst-a"), ("b-w1", "inst-b")), start=1):
                collector.handle(f"meterwatch/up/{inst}/{device}/reading",
                                 payload([(ts, 10.0 + k) for k, ts in enumerate(t)]),
                                 lambda n=n: acks.append((n, len(collector.spool))))
            await collector.flush()
            collector.handle("meterwatch/up/inst-a/a-e1/reading", payload([(ts, 1.0 + k) for k, ts in enumerate(t)]),
                             lambda: acks.append((3, len(collector.spool))))
            await collector.flush()
            await until(lambda: len(acks) == 3, "the three messages acknowledged")
            assert refused  # one body really was refused mid-batch
            assert [n for n, _ in acks] == [1, 2, 3]
            assert all(spooled >= 1 for _, spooled in acks)  # durable on disk when acknowledged
            assert collector.metrics.spooled == 360
            await until(lambda: len(collector.spool) == 0, "the spool replayed into the store")
    for device, base, step in (("a-w1", 10.0, 1.0), ("b-w1", 10.0, 1.0), ("a-e1", 40.0, 40.0)):  # a-e1: x 40
        got = await stored(influxd.port, "overload", device)
        assert got == {ts: (base + step * k, None if k == 0 else step) for k, ts in enumerate(t)}


async def test_the_tail_of_a_burst_is_written_when_the_writer_is_free_not_a_batch_interval_later(influxd, tmp_path):
    """batch_interval_s is an hour: after a full batch (batch_size 2) the one message left is written as soon as
    the writer has nothing queued or in flight."""
    acks: list[int] = []
    async with InfluxFront(influxd.port) as front:
        async with collector_on(front, "tail", tmp_path, batch_size=2) as collector:
            for n in (1, 2, 3):
                collector.handle("meterwatch/up/inst-a/a-w1/reading", payload([(T0 + 900 * n, float(n))]),
                                 lambda n=n: acks.append(n))
                if n == 2:
                    await collector.flush()  # full: as the consumer flushes a burst
            await until(lambda: acks == [1, 2, 3], "the burst's last message written without waiting the hour")
    assert sorted(await stored(influxd.port, "tail", "a-w1")) == [T0 + 900 * n for n in (1, 2, 3)]


async def test_under_a_light_load_what_waits_keeps_waiting_for_the_batch_interval(influxd, tmp_path):
    """No batch was full: with the writer free, a message still waits for batch_interval_s (an hour here) or a
    full list, so a light load is not written a message at a time."""
    acks: list[int] = []
    async with InfluxFront(influxd.port) as front:
        async with collector_on(front, "light", tmp_path, batch_size=2) as collector:
            collector.handle("meterwatch/up/inst-a/a-w1/reading", payload([(T0 + 900, 1.0)]), lambda: acks.append(1))
            await collector.flush()  # not full: as the ticker flushes a light load
            collector.handle("meterwatch/up/inst-a/a-w1/reading", payload([(T0 + 1800, 2.0)]), lambda: acks.append(2))
            await until(lambda: 1 in acks, "the first message written")
            await until(lambda: not collector._drained.is_set(), "the ticker to see the writer free")  # noqa: SLF001
            assert acks == [1] and len(collector._pending) == 1  # noqa: SLF001
        assert acks == [1, 2]  # stopping flushes it


async def test_a_flush_cuts_its_batches_at_batch_max_bytes_too(influxd, tmp_path):
    """Daily uploads are big: a batch ends before its payloads pass ``batch_max_bytes`` (2 KiB here, two
    uploads of 22 readings, about 830 bytes each), however many messages ``batch_size`` allows, so the event
    loop is never held long.  An upload bigger than the bound is a batch of its own."""
    acks: list[int] = []
    async with InfluxFront(influxd.port) as front:
        async with collector_on(front, "bytes", tmp_path, batch_size=1000, batch_max_bytes=2048) as collector:
            for n in range(6):
                count = 60 if n == 5 else 22  # the last: about 2.2 KiB
                readings = [(T0 + 900 * (22 * n + k), float(22 * n + k)) for k in range(count)]
                collector.handle("meterwatch/up/inst-a/a-w1/reading", payload(readings), lambda n=n: acks.append(n))
            assert collector._is_full()  # noqa: SLF001  (about 6.4 KiB wait: the consumer flushes now)
            await collector.flush()
            await until(lambda: len(acks) == 6, "the six uploads acknowledged")
    assert acks == [0, 1, 2, 3, 4, 5]
    bodies = [body for body in front.writes if body.startswith(b"reading,")]
    assert sorted(body.count(b"\n") + 1 for body in bodies) == [22, 44, 44, 60]  # (0, 1), (2, 3), (4), (5)
    assert len(await stored(influxd.port, "bytes", "a-w1")) == 22 * 5 + 60
