"""Midnight burst: every device of the province reports within one minute; how long until all is stored?

NB-IoT meters upload the day's cached readings once a day, and many are
set to do it just after midnight.  Here every meter of a 5,010-institution
province sends its 96 quarter-hours of the day, and every garbage scale one
weighing, all within ``--spread`` seconds, through a real mosquitto to
``meterwatch collect`` running as its own process (so its memory is its
own) into a real influxd.  Reported: time from the first message until
every reading is stored, and from the last message published until then,
readings/s, each collector process's peak resident memory, and loss (must
be zero).  ``--workers N`` runs ``meterwatch collect --workers N`` (the
supervisor and N partition workers); ``--spread 0`` publishes everything at
once, as fast as the publisher can.

    python -m benchmarks.midnight                      # 5,010 institutions
    python -m benchmarks.midnight --institutions 100   # quick
    python -m benchmarks.midnight --spread 0 --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from meterwatch.localtime import DAY, local_midnight
from meterwatch.registry import load_registry
from benchmarks.servers import start_influxd, start_mosquitto
from meterwatch.settings import Settings
from meterwatch.store import ReadingPoint, WeighingPoint, open_store
from simulators.province import generate_province, write_registry
from simulators.publish import publish_messages
from simulators.traffic import Message

SLOTS = 96


def burst(registry, midnight: int, spread_s: float) -> tuple[list[Message], int, int]:
    """(messages spread over ``spread_s``, readings, weighings): the day's readings of every meter, one weighing
    per scale."""
    cards: dict[str, str] = {}
    for card in registry.cards.values():
        cards.setdefault(card.institution, card.card)
    devices = sorted(registry.devices.values(), key=lambda d: d.id)
    out, readings, weighings = [], 0, 0
    for k, d in enumerate(devices):
        at = midnight + spread_s * k / len(devices)
        base = f"meterwatch/up/{d.institution}/{d.id}"
        if d.kind == "scale":
            if d.institution not in cards:
                continue
            body = {"ts": midnight - 3600, "card": cards[d.institution], "weight_kg": 12.5}
            out.append(Message(at, f"{base}/weighing", json.dumps(body).encode()))
            weighings += 1
            continue
        items = [{"ts": midnight - DAY + 900 * (j + 1), "value": round(100.0 + 0.5 * j, 3)} for j in range(SLOTS)]
        out.append(Message(at, f"{base}/reading", json.dumps({"readings": items, "battery_v": 3.6}).encode()))
        readings += SLOTS
    return out, readings, weighings


def _rss_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _peaks(pid: int, workers: int, peaks: dict[int, int], cpu: dict[int, float]) -> None:
    """Each collector process's peak resident memory (kB) and CPU seconds, by pid: the process, or its workers."""
    for p in _children(pid) if workers > 1 else [pid]:
        peaks[p] = max(peaks.get(p, 0), _rss_kb(p, "VmHWM"))
        cpu[p] = max(cpu.get(p, 0.0), cpu_s(p))


async def run(institutions: int = 5010, spread_s: float = 60.0, timeout_s: float = 900.0, workers: int = 1) -> str:
    work = Path(tempfile.mkdtemp(prefix="mw-midnight-"))
    write_registry(generate_province(institutions, seed=5), work / "registry")
    registry, _ = load_registry(work / "registry")
    midnight = local_midnight(time.time())  # the last local midnight
    messages, readings, weighings = burst(registry, midnight, spread_s)
    # the 10x province has about 200,000 meters: more than the 100,000 device tags influxd allows by default
    broker, influxd = start_mosquitto(work / "broker"), start_influxd(work / "influx", unlimited_tags=True)
    store_url = f"influxdb://127.0.0.1:{influxd.port}/midnight"
    env = {**os.environ, "METERWATCH_BROKER": f"mqtt://127.0.0.1:{broker.port}", "METERWATCH_STORE": store_url,
           "METERWATCH_REGISTRY": str(work / "registry"), "METERWATCH_COLLECTOR__CLIENT_ID": "midnight",
           "METERWATCH_COLLECTOR__SPOOL_DIR": str(work / "spool"), "METERWATCH_LOG_LEVEL": "WARNING"}
    log = open(work / "collector.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "meterwatch_cli.main", "collect", "--workers", str(workers)],
                            env=env, stderr=log, cwd=work)
    store = open_store(store_url)
    try:
        await store.open()
        deadline = time.monotonic() + 30
        while (await _subscribed(broker.port, workers)) is False and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        settings = Settings(broker=f"mqtt://127.0.0.1:{broker.port}")
        broker_cpu, influxd_cpu = cpu_s(broker.proc.pid), cpu_s(influxd.proc.pid)
        cpu: dict[int, float] = {}
        _peaks(proc.pid, workers, {}, cpu)
        collectors_cpu = sum(cpu.values())
        started = time.monotonic()
        rate = len(messages) / spread_s if spread_s > 0 else 1e9  # spread 0: as fast as the publisher goes
        publishing = asyncio.create_task(publish_messages(settings, messages, max_rate=rate, workers=64))
        stored, peaks, published_at = 0, {}, None
        deadline = started + timeout_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            _peaks(proc.pid, workers, peaks, cpu)
            if publishing.done():
                published_at = published_at or time.monotonic()
                stored = await store.count(ReadingPoint)
                if stored >= readings:
                    break
        elapsed = time.monotonic() - started
        after_last = time.monotonic() - (published_at or started)
        publish_s = (published_at or started) - started
        published = (await publishing).published
        stored_w = await store.count(WeighingPoint)
        _peaks(proc.pid, workers, peaks, cpu)
        collectors_cpu = sum(cpu.values()) - collectors_cpu
        broker_cpu, influxd_cpu = cpu_s(broker.proc.pid) - broker_cpu, cpu_s(influxd.proc.pid) - influxd_cpu
        load = os.getloadavg()[0]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        await store.close()
        broker.stop()
        influxd.stop()
    memory = ", ".join(f"{kb / 1024:.0f}" for kb in peaks.values()) or "?"
    return (f"{institutions:,} institutions: {len(messages):,} devices report within {spread_s:g} s "
            f"({published:,} messages published: {readings:,} readings, 96 a meter, and {weighings:,} weighings), "
            f"`meterwatch collect --workers {workers}`\n\n"
            "| | value |\n|---|---:|\n"
            f"| time from the first message until all stored | {elapsed:.1f} s |\n"
            f"| publishing took | {publish_s:.1f} s |\n"
            f"| time from the last message published until all stored | {after_last:.1f} s |\n"
            f"| readings stored | {stored:,} of {readings:,} |\n"
            f"| weighings stored | {stored_w:,} of {weighings:,} |\n"
            f"| lost | {readings - stored + weighings - stored_w:,} |\n"
            f"| readings/s over the burst | {stored / elapsed:,.0f} |\n"
            f"| peak resident memory per collector process | {memory} MB |\n"
            f"| CPU seconds: collector processes, mosquitto, influxd | {collectors_cpu:.1f}, {broker_cpu:.1f}, "
            f"{influxd_cpu:.1f} |\n"
            f"| machine load at the end (1 min, all processes; {os.cpu_count()} cores) | {load:.1f} |")


async def _subscribed(port: int, workers: int = 1) -> bool:
    """True once every collector process's persistent session exists (their status messages are retained)."""
    proc = await asyncio.create_subprocess_exec(
        "mosquitto_sub", "-h", "127.0.0.1", "-p", str(port), "-t", "meterwatch/status/#", "-C", str(workers),
        "-W", "1", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return out.count(b"online") >= workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--institutions", type=int, default=5010)
    parser.add_argument("--spread", type=float, default=60.0, help="seconds over which every device reports "
                                                                   "(0: all at once)")
    parser.add_argument("--workers", type=int, default=1, help="meterwatch collect --workers N")
    args = parser.parse_args()
    print(asyncio.run(run(args.institutions, args.spread, workers=args.workers)))


if __name__ == "__main__":
    main()
