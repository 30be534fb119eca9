"""Ingest: meterwatch's collector against a naive collector and the broker's own ceiling, same run.

N readings (batched as NB-IoT meters send them) are published through a
real mosquitto to a persistent session, then drained by (a) meterwatch's
collector into InfluxDB, (b) a naive collector written the way tutorials
do (one HTTP /write per message), (c) mosquitto_sub to /dev/null (the
broker's ceiling).  Each drains the same queued messages, so the publisher
is not in the timing.  (d) is the store's own ceiling: the same readings,
as meterwatch stores them, bulk-written straight into influxd over HTTP
line protocol in big batches (encoded beforehand, two requests in flight).
(a2) is the same drain by ``meterwatch collect``'s default here: one
collector process a core (``--workers``), each its partition of the devices
on its own session.

A single a/d varies by about 0.05 from run to run on this machine (influxd
takes the same bodies in 1.8-2.1 s), more than the distance to its target.
``--pairs K`` runs (a), (d) and (a2) K times in turn, each on a database of
its own, lists every pair's a/d and reports the pair of the median.  Every
drain starts with influxd idle (``settled``): after a big write it snapshots
and compacts in the background for a while.  A pair's databases are dropped
after it, so every pair meets the same influxd: while they piled up, the
later pairs of nine ran from 0.42 to 1.21.

    python -m benchmarks.ingest --readings 200000 [--per-message 96] [--pairs 5] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import multiprocessing
import os
import platform
import pstats
import shutil
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import aiomqtt

from collector.service import Collector
from collector.topics import Partition
from meterwatch.registry import load_registry
from meterwatch.settings import CollectorSettings, Settings
from meterwatch.store import ReadingPoint, open_store
from meterwatch.store.influx import request_bodies
from meterwatch.store.lineprotocol import encode_lines
from simulators.province import generate_province, write_registry
from simulators.publish import publish_messages
from simulators.traffic import Message
from benchmarks.servers import start_influxd, start_mosquitto

PER_MESSAGE = 4  # an hourly NB-IoT upload of four quarter-hours (the default; 96 is a daily upload)
BATCH_READINGS = 20_000  # readings per write when messages are big (batch_size is in messages)
CEILING_LINES = 10_000  # lines per /write of the store's ceiling: as big as influxd takes them well
CEILING_BODY_BYTES = 8 * 1024 * 1024
TICKS = os.sysconf("SC_CLK_TCK")
WORKERS = os.cpu_count() or 1  # (a2): ``meterwatch collect``'s default with InfluxDB, a worker a core
WORKERS_ID = "mw-workers"  # (a2)'s client id: its sessions are WORKERS_ID-p0 ...


async def settled(pid: int, quiet_share: float = 0.05, look_s: float = 0.25, limit_s: float = 60.0) -> float:
    """Wait until the process is idle (under ``quiet_share`` of a core over ``look_s``); the seconds waited.

    influxd snapshots its cache and compacts in the background for a while after a big write: a drain
    started then shares the cores with the last one's leftovers."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        before = cpu_seconds(pid)
        await asyncio.sleep(look_s)
        if cpu_seconds(pid) - before < quiet_share * look_s:
            break
    return time.monotonic() - started


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of a process so far (this one when ``pid`` is None), from /proc."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def messages(registry, readings: int, per_message: int = PER_MESSAGE) -> list[Message]:
    meters = sorted((d for d in registry.devices.values() if d.kind != "scale"), key=lambda d: d.id)
    rounds = -(-readings // per_message // len(meters))
    t0 = (int(time.time()) // 900) * 900 - 900 * per_message * (rounds + 2)  # every reading in the past
    out, k = [], 0
    while k * per_message < readings:
        d = meters[k % len(meters)]
        step = (k // len(meters)) * per_message
        items = [{"ts": t0 + 900 * (step + j), "value": 10.0 + step + j} for j in range(per_message)]
        out.append(Message(0, f"meterwatch/up/{d.institution}/{d.id}/reading", json.dumps({"readings": items}).encode()))
        k += 1
    return out


async def fill(broker_port: int, client_id: str, msgs: list[Message], sessions: int = 1) -> None:
    """Create the persistent session (``sessions`` > 1: one per worker, as ``collect --workers`` names them),
    then queue every message in it."""
    for identifier in _session_ids(client_id, sessions):
        async with aiomqtt.Client("127.0.0.1", broker_port, identifier=identifier, clean_session=False) as c:
            await c.subscribe("meterwatch/up/+/+/reading", qos=1)
    await publish_messages(Settings(broker=f"mqtt://127.0.0.1:{broker_port}"), msgs, speed=None, max_rate=1e9,
                           workers=64, client_id=f"pub-{client_id}")


async def forget(broker_port: int, client_id: str, sessions: int = 1) -> None:
    """End the drained sessions (a clean connect discards them): a later fill queues nothing for them, and a
    message a drain left unacknowledged is not delivered to the next one."""
    for identifier in _session_ids(client_id, sessions):
        async with aiomqtt.Client("127.0.0.1", broker_port, identifier=identifier, clean_session=True):
            pass


def _session_ids(client_id: str, sessions: int) -> list[str]:
    return [client_id] if sessions == 1 else [f"{client_id}-p{i}" for i in range(sessions)]


def batch_size(per_message: int) -> int:
    """Messages per flush: 1,000 (today's figure) for small messages; about ``BATCH_READINGS`` readings for big ones."""
    return 1000 if per_message <= PER_MESSAGE else max(1, BATCH_READINGS // per_message)


def _settings(broker_port: int, influx_url: str, workdir: Path, per_message: int, client_id: str,
              partition: str | None = None) -> Settings:
    """A drain's collector settings: (a)'s, or with ``partition`` one of (a2)'s workers."""
    return Settings(broker=f"mqtt://127.0.0.1:{broker_port}", store=influx_url,
                    collector=CollectorSettings(client_id=client_id, spool_dir=workdir / "spool",
                                                batch_size=batch_size(per_message), partition=partition))


async def _until_stored(collector: Collector, n: int) -> None:
    """Until ``collector`` has stored ``n`` readings, seen within 10 ms (50 ms until 2026-11-26: up to 1.7% of a
    3 s drain); a drain not done in 120 s fails."""
    deadline = time.monotonic() + 120
    while collector.metrics.stored < n:
        await asyncio.sleep(0.01)
        if time.monotonic() > deadline:
            raise RuntimeError(f"meterwatch drained {collector.metrics.received} messages, stored "
                               f"{collector.metrics.stored} of {n} readings in 120 s")


async def meterwatch_run(broker_port: int, influx_url: str, registry, workdir: Path, n: int, per_message: int,
                         profile: cProfile.Profile | None = None, client_id: str = "mw") -> tuple[float, float]:
    """(seconds until every reading is stored, of which start-up: store baseline query and broker connection)."""
    store = open_store(influx_url)
    collector = Collector(_settings(broker_port, influx_url, workdir, per_message, client_id), registry, store)
    stop = asyncio.Event()
    if profile is not None:
        profile.enable()
    started = time.perf_counter()
    connected_at: list[float] = []
    waiter = asyncio.create_task(collector.connected.wait())
    waiter.add_done_callback(lambda _: connected_at.append(time.perf_counter()))
    task = asyncio.create_task(collector.run(stop))
    await _until_stored(collector, n)
    elapsed = time.perf_counter() - started
    if profile is not None:
        profile.disable()
    stop.set()
    await task
    await store.close()
    return elapsed, (connected_at[0] - started) if connected_at else 0.0


def workers_run(broker_port: int, influx_url: str, workdir: Path, msgs: list[Message], per_message: int,
                count: int) -> tuple[float, float]:
    """(a2) ``count`` collector processes, partitions 0/count .. count-1/count, each on its own session, as
    ``meterwatch collect --workers count`` runs them (its supervisor is not on the data path).  They start,
    load the registry and wait; timed from the go until the last has stored its share.
    (seconds, CPU seconds of all of them in that time)."""
    context = multiprocessing.get_context("spawn")  # a fresh interpreter each, as the supervisor starts them
    go, done = context.Event(), context.Queue()
    shares = [sum(per_message for m in msgs if Partition(i, count).owns(m.topic)) for i in range(count)]
    workers = [context.Process(target=_worker, args=(i, count, broker_port, influx_url, workdir, per_message,
                                                     shares[i], go, done)) for i in range(count)]
    for worker in workers:
        worker.start()
    try:
        ready = [done.get(timeout=120) for _ in workers]  # each: registry loaded, collector made
        if not all(r == "ready" for r in ready):
            raise RuntimeError(f"a worker failed to start: {ready}")
        started = time.monotonic()
        go.set()
        ends = [done.get(timeout=120) for _ in workers]
    finally:
        for worker in workers:
            worker.join(timeout=60)
            if worker.is_alive():  # failed, or stuck: the benchmark fails rather than hangs on it
                worker.terminate()
    return max(end for end, _ in ends) - started, sum(cpu for _, cpu in ends)


def _worker(index: int, count: int, broker_port: int, influx_url: str, workdir: Path, per_message: int, share: int,
            go: Any, done: Any) -> None:
    async def drain() -> None:
        registry, _ = load_registry(workdir / "registry")
        settings = _settings(broker_port, influx_url, workdir, per_message, WORKERS_ID, f"{index}/{count}")
        store = open_store(influx_url)
        collector, stop = Collector(settings, registry, store), asyncio.Event()
        done.put("ready")
        go.wait()
        cpu = cpu_seconds()
        task = asyncio.create_task(collector.run(stop))
        await _until_stored(collector, share)
        done.put((time.monotonic(), cpu_seconds() - cpu))
        stop.set()
        await task
        await store.close()

    asyncio.run(drain())


def stored_lines(registry, msgs: list[Message]) -> list[str]:
    """The benchmark's readings as meterwatch stores them (registry tags, register, consumption, interval)."""
    points = []
    for m in msgs:
        device = registry.devices[m.topic.split("/")[3]]
        inst = registry.institutions[device.institution]
        points += [ReadingPoint(device.id, device.institution, inst.city, inst.type, device.kind, r["ts"],
                                r["value"] * device.multiplier, device.multiplier, 900)
                   for r in json.loads(m.payload)["readings"]]
    return encode_lines(ReadingPoint.schema, points).split("\n")


async def store_ceiling_run(influx_port: int, lines: list[str], in_flight: int = 2) -> float:
    """(d) The same readings bulk-written straight into influxd: big bodies, ``in_flight`` requests at a time."""
    bodies = [b.encode() for b in request_bodies(lines, CEILING_BODY_BYTES, CEILING_LINES)]
    url, database = f"http://127.0.0.1:{influx_port}/write", f"ceiling{in_flight}"
    await influx_query(influx_port, f"CREATE DATABASE {database}")
    async with aiohttp.ClientSession() as http:
        async def post(queue: list[bytes]) -> None:
            while queue:
                async with http.post(url, params={"db": database, "precision": "s"}, data=queue.pop()) as resp:
                    resp.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(post(bodies) for _ in range(in_flight)))
        return time.perf_counter() - started


async def influx_query(influx_port: int, q: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"http://127.0.0.1:{influx_port}/query", params={"q": q}) as r:
            r.raise_for_status()
            await r.read()  # released before the session closes (aiohttp warns of an unclosed connection otherwise)


async def _stored_all(influx_url: str, n: int, what: str) -> None:
    store = open_store(influx_url)
    await store.open()
    stored = await store.count(ReadingPoint)
    await store.close()
    if stored != n:
        raise RuntimeError(f"{what} stored {stored:,} of {n:,} readings")


def top_of_profile(profile: cProfile.Profile, rows: int = 20) -> str:
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(rows)
    return out.getvalue()


async def naive_run(broker_port: int, influx_port: int, messages_count: int) -> float:
    """The tutorial collector: parse, build a line, POST it, next message."""
    started = time.perf_counter()
    done = 0
    async with aiohttp.ClientSession() as http, aiomqtt.Client("127.0.0.1", broker_port, identifier="naive",
                                                               clean_session=False) as client:
        await client.subscribe("meterwatch/up/+/+/reading", qos=1)
        async for message in client.messages:
            device = message.topic.value.split("/")[3]
            body = json.loads(message.payload)
            lines = "\n".join(f"reading,device={device} register={r['value']} {r['ts']}" for r in body["readings"])
            async with http.post(f"http://127.0.0.1:{influx_port}/write", params={"db": "naive", "precision": "s"},
                                 data=lines) as resp:
                resp.raise_for_status()
            done += 1
            if done >= messages_count:
                break
    return time.perf_counter() - started


def ceiling_run(broker_port: int, messages_count: int) -> float:
    binary = shutil.which("mosquitto_sub") or "mosquitto_sub"
    started = time.perf_counter()
    subprocess.run([binary, "-h", "127.0.0.1", "-p", str(broker_port), "-i", "ceiling", "-c", "-q", "1",
                    "-t", "meterwatch/up/+/+/reading", "-C", str(messages_count)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


async def run(readings: int, per_message: int = PER_MESSAGE, profile: bool = False, pairs: int = 1) -> str:
    workdir = Path(tempfile.mkdtemp(prefix="mw-bench-"))
    write_registry(generate_province(200, seed=1), workdir / "registry")
    registry, _ = load_registry(workdir / "registry")
    msgs = messages(registry, readings, per_message)
    lines = stored_lines(registry, msgs)
    n = len(msgs) * per_message
    profiler = cProfile.Profile(time.process_time) if profile else None  # CPU time: the machine may be shared
    broker, influxd = start_mosquitto(workdir / "broker"), start_influxd(workdir / "influx")
    runs: list[Pair] = []
    try:
        await influx_query(influxd.port, "CREATE DATABASE naive")
        pids = {"collector": None, "mosquitto": broker.proc.pid, "influxd": influxd.proc.pid}
        for k in range(pairs):  # (a), (d) and (a2), each on a database of its own, dropped after the pair
            await fill(broker.port, "mw", msgs)
            influx_url = f"influxdb://127.0.0.1:{influxd.port}/bench"
            await settled(influxd.proc.pid)
            before = {name: cpu_seconds(pid) for name, pid in pids.items()}
            a, startup = await meterwatch_run(broker.port, influx_url, registry, workdir, n, per_message, profiler)
            cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
            await forget(broker.port, "mw")
            await _stored_all(influx_url, n, f"(a) of pair {k + 1}")
            await settled(influxd.proc.pid)
            d = await store_ceiling_run(influxd.port, lines)
            await fill(broker.port, WORKERS_ID, msgs, sessions=WORKERS)
            await settled(influxd.proc.pid)
            url2 = f"influxdb://127.0.0.1:{influxd.port}/workers"
            a2, cpu2 = await asyncio.to_thread(workers_run, broker.port, url2, workdir, msgs, per_message, WORKERS)
            await forget(broker.port, WORKERS_ID, WORKERS)
            await _stored_all(url2, n, f"(a2) of pair {k + 1}")
            runs.append(Pair(a, startup, d, cpu, a2, cpu2))
            for database in ("bench", "ceiling2", "workers"):  # every pair starts on the same influxd
                await influx_query(influxd.port, f"DROP DATABASE {database}")
        await fill(broker.port, "naive", msgs)
        await settled(influxd.proc.pid)
        b = await naive_run(broker.port, influxd.port, len(msgs))
        await forget(broker.port, "naive")  # or the ceiling's fill queues its copies there too
        await fill(broker.port, "ceiling", msgs)
        c = ceiling_run(broker.port, len(msgs))
        await settled(influxd.proc.pid)
        d1 = await store_ceiling_run(influxd.port, lines, in_flight=1)
    finally:
        broker.stop()
        influxd.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    middle = sorted(runs, key=lambda p: p.d / p.a)[(len(runs) - 1) // 2]  # the pair of the median a/d
    a, startup, d, cpu = middle.a, middle.startup, middle.d, middle.cpu
    rate = lambda s: n / s  # noqa: E731
    report = (f"{n:,} readings in {len(msgs):,} messages ({per_message} a message, {batch_size(per_message)} messages a "
              f"flush), mosquitto 2.0 and influxd 1.6 on loopback, {platform.machine()} Python "
              f"{platform.python_version()}\n\n"
              + (f"(a) and (d) run {pairs} times in turn; below, the pair with the median a/d. "
                 f"Every pair's a/d: {', '.join(f'{p.d / p.a:.2f}' for p in runs)}\n\n" if pairs > 1 else "")
              + "| drain | seconds | readings/s |\n|---|---|---|\n"
              f"| (a) meterwatch collector -> InfluxDB ({n:,} stored) | {a:.1f} | {rate(a):,.0f} |\n"
              f"| (b) naive collector, one HTTP write per message | {b:.1f} | {rate(b):,.0f} |\n"
              f"| (c) broker ceiling: mosquitto_sub to /dev/null | {c:.1f} | {rate(c):,.0f} |\n"
              f"| (d) store ceiling: the same readings bulk-written into influxd | {d:.1f} | {rate(d):,.0f} |\n"
              f"| (a2) the same drain by {WORKERS} collector processes (`collect --workers {WORKERS}`) | "
              f"{middle.a2:.1f} | {rate(middle.a2):,.0f} |\n\n"
              f"a/b = {b / a:.1f} (target >= 5); a/c = {c / a:.2f} (target >= 0.5); "
              f"a/d = {d / a:.2f} (meterwatch/store ceiling, target >= 0.7); a2/d = {d / middle.a2:.2f} "
              f"(median of the pairs: {statistics.median(p.d / p.a2 for p in runs):.2f}; the default "
              f"`meterwatch collect` here, {middle.cpu2:.1f} CPU s in all)\n\n"
              f"(a) includes the collector's start-up (store baseline query, broker connection), {startup:.1f} s; "
              f"draining alone {a - startup:.1f} s, {rate(a - startup):,.0f} readings/s, "
              f"a/d on draining alone = {d / (a - startup):.2f}. The store ceiling one request at a time: {d1:.1f} s, "
              f"{rate(d1):,.0f} readings/s, a/d1 = {d1 / a:.2f}\n\n"
              f"During (a), {a:.1f} s on {os.cpu_count()} cores, CPU seconds: "
              + ", ".join(f"{name} {sec:.1f} ({sec / a:.0%} of a core)" for name, sec in cpu.items())
              + f"; one collector process: {n / cpu['collector']:,.0f} readings per CPU second")
    if profiler is not None:
        report += "\n\nProfile of (a) (cProfile in CPU seconds, this process: the collector and the benchmark's wait loop)\n\n"
        report += top_of_profile(profiler)
    return report


@dataclass
class Pair:
    """One (a), the (d) right after it and then (a2)."""

    a: float
    startup: float
    d: float
    cpu: dict[str, float]
    a2: float  # the same drain by WORKERS collector processes
    cpu2: float


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=200_000)
    parser.add_argument("--per-message", type=int, default=PER_MESSAGE, help="readings in one message (4 or 96)")
    parser.add_argument("--profile", action="store_true", help="cProfile the collector during (a), print the top")
    parser.add_argument("--pairs", type=int, default=1,
                        help="run (a) and (d) this many times in turn and report the pair of the median a/d")
    args = parser.parse_args()
    print(asyncio.run(run(args.readings, args.per_message, args.profile, args.pairs)))


if __name__ == "__main__":
    main()
