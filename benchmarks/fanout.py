"""What partitions cost: every worker of ``collect --workers N`` receives every message, and skips the others'.

One ``meterwatch collect --partition i/2`` process, on a real mosquitto and
influxd, receives the midnight burst of ``--institutions`` (one message a
device: a meter's day of 96 readings, or a weighing).  Its CPU time
(``/proc/<pid>/stat``) is read before and after, twice: as the worker that
owns none of the devices (it only receives, skips and acknowledges), and as
the one that owns them all (it decodes, derives and writes them).  The
ratio is what fanning every message out to every worker adds per worker.

    python -m benchmarks.fanout --institutions 1000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import aiohttp

from benchmarks.midnight import burst, cpu_s
from benchmarks.servers import free_port, start_influxd, start_mosquitto
from meterwatch.localtime import local_midnight
from meterwatch.registry import load_registry
from meterwatch.settings import Settings
from simulators.province import generate_province, write_registry
from simulators.publish import publish_messages

async def _seen(port: int) -> float:
    """received + skipped_other_partition, from the worker's /metrics."""
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as answer:
            text = await answer.text()
    except aiohttp.ClientError:
        return -1
    total = 0.0
    for line in text.splitlines():
        if line.startswith(("meterwatch_collector_received_total ", "meterwatch_collector_skipped_other_partition_total ")):
            total += float(line.split()[1])
    return total


async def one(work: Path, broker_port: int, store_url: str, partition: str, messages, label: str) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of a worker with ``partition`` over ``messages``."""
    http = free_port()
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{broker_port}", "METERWATCH_STORE": store_url,
           "METERWATCH_REGISTRY": str(work / "registry"), "METERWATCH_COLLECTOR__CLIENT_ID": f"fanout-{label}",
           "METERWATCH_COLLECTOR__SPOOL_DIR": str(work / "spool"), "METERWATCH_LOG_LEVEL": "WARNING",
           "METERWATCH_COLLECTOR__HTTP_LISTEN": f"127.0.0.1:{http}"}
    with open(work / f"{label}.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "collect", "--partition", partition],
                                env=env, stderr=log, cwd=work)
    try:
        deadline = time.monotonic() + 60
        while await _seen(http) < 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # start-up work (imports, registry, baseline) settles before the first reading
        before, started = cpu_s(proc.pid), time.monotonic()
        await publish_messages(Settings(broker=f"mqtt://127.0.0.1:{broker_port}"), messages, max_rate=1e9, workers=64,
                               client_id=f"fanout-pub-{label}")
        while await _seen(http) < len(messages) and time.monotonic() < deadline + 600:
            await asyncio.sleep(0.1)
        return cpu_s(proc.pid) - before, time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


async def run(institutions: int = 1000) -> str:
    work = Path(tempfile.mkdtemp(prefix="mw-fanout-"))
    write_registry(generate_province(institutions, seed=5), work / "registry")
    registry, _ = load_registry(work / "registry")
    messages, readings, _ = burst(registry, local_midnight(time.time()), 0.0)
    # Only devices of partition 0 of 2: worker 1/2 skips every message, worker 0/2 handles every one.
    mine = [m for m in messages if zlib.crc32(m.topic.split("/")[3].encode()) % 2 == 0]
    broker, influxd = start_mosquitto(work / "broker"), start_influxd(work / "influx")
    try:
        url = f"influxdb://127.0.0.1:{influxd.port}/fanout"
        skip_cpu, skip_wall = await one(work, broker.port, url, "1/2", mine, "skips")
        own_cpu, own_wall = await one(work, broker.port, url, "0/2", mine, "owns")
    finally:
        broker.stop()
        influxd.stop()
    n = len(mine)
    return (f"{n:,} messages (the midnight burst's devices of partition 0 of 2, of {institutions:,} institutions), "
            "published at once to one worker\n\n"
            "| worker | CPU s | µs per message | wall s |\n|---|---:|---:|---:|\n"
            f"| 1/2: skips every message (receive, hash, acknowledge) | {skip_cpu:.2f} | {skip_cpu / n * 1e6:,.0f} "
            f"| {skip_wall:.1f} |\n"
            f"| 0/2: owns every message (decode 96 readings, derive, write) | {own_cpu:.2f} | "
            f"{own_cpu / n * 1e6:,.0f} | {own_wall:.1f} |\n\n"
            f"a skipped message costs {f'{skip_cpu / own_cpu:.1%}' if own_cpu else '(too few to measure)'} of a "
            "handled one; with N workers each spends (N - 1) / N of the messages skipping")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--institutions", type=int, default=1000)
    args = parser.parse_args()
    print(asyncio.run(run(args.institutions)))


if __name__ == "__main__":
    main()
