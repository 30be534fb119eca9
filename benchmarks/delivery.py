"""Alert delivery: a province with several hundred open alerts and robots answering in 2 s.

The registry is generated (``--institutions``), the store is an empty DuckDB,
so the silent rule opens an alert on every meter at once: the worst first
evaluation.  Contacts: one DingTalk robot per city, one WeCom robot per
institution type, the province's webhook and a critical-only SMS gateway,
all on one local HTTP server that answers each request after
``--robot-delay`` seconds.

Measured: the evaluation's time without contacts, then with them (the
sender running beside it, as in the scheduled process); the time from the
evaluation's start until every contact has its digest; messages sent, and
the most any contact got (target: one per contact per evaluation).

    python -m benchmarks.delivery                       # 100 institutions, 2 s robots
    python -m benchmarks.delivery --institutions 20 --robot-delay 0.2   # quick
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from analytics.alerts import AlertBook
from analytics.runner import evaluate
from analytics.sender import Sender
from benchmarks.servers import robot_server
from meterwatch.const import DEFAULT_CITIES, INSTITUTION_TYPES
from meterwatch.registry import Registry, load_registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import open_store
from simulators.province import generate_province, write_registry

HEADER = "id,name,channel,address,scope,rules,min_severity,quiet_hours\n"


def contacts_csv(base: str) -> str:
    rows = [f"city-{c},{name}运维,dingtalk,{base}/city-{c}?access_token=T,city:{c},*,info," for c, name in DEFAULT_CITIES.items()]
    rows += [f"type-{t},{name}主管,wecom,{base}/type-{t}?key=K,type:{t},*,info," for t, name in INSTITUTION_TYPES.items()]
    rows += [f"prov,能源办,webhook,{base}/prov,province,*,info,", f"duty,值班,sms_webhook,{base}/duty,province,*,critical,"]
    return HEADER + "\n".join(rows) + "\n"


async def _evaluate_once(registry: Registry, store_url: str, cfg: AnalyticsSettings, at: int,
                         with_sender: bool) -> tuple[float, float | None, Counter[str], int]:
    """(evaluation s, s until every digest was delivered, messages per contact, alerts opened)."""
    store = open_store(store_url)
    await store.open()
    try:
        book = AlertBook(update_interval_s=cfg.update_interval_s)  # fresh: every alert opens again
        sender = Sender(book, registry, cfg, [], store)
        stop = asyncio.Event()
        running = asyncio.create_task(sender.run(stop)) if with_sender else None
        start = time.perf_counter()
        result = await evaluate(store, registry, cfg, book, at, [])
        evaluated = time.perf_counter() - start
        delivered = None
        if running is not None:
            while book.messages:
                await asyncio.wait_for(book.wake.wait(), timeout=60)  # a worker ended: look again
                book.wake.clear()
            delivered = time.perf_counter() - start
            stop.set()
            await running
        return evaluated, delivered, Counter(sender.counts), len(result.events)
    finally:
        await store.close()


async def run(institutions: int = 100, robot_delay_s: float = 2.0, repeats: int = 3) -> str:
    work = Path(tempfile.mkdtemp(prefix="mw-delivery-"))
    write_registry(generate_province(institutions, seed=7), work / "registry")
    async with robot_server(delay_s=robot_delay_s) as robot:
        (work / "registry" / "contacts.csv").write_text(contacts_csv(robot.base), encoding="utf-8")
        registry, problems = load_registry(work / "registry")
        assert not problems, problems[:3]
        bare = dataclasses.replace(registry, contacts={})
        cfg = AnalyticsSettings(state_file=work / "alerts.json")
        at = int(time.time())
        without, with_, until, sent = [], [], [], Counter[str]()
        await _evaluate_once(bare, f"duckdb://{work}/warm.duckdb", cfg, at, False)  # imports, rule discovery
        alerts = 0
        for k in range(repeats):
            evaluated, _, _, alerts = await _evaluate_once(bare, f"duckdb://{work}/a{k}.duckdb", cfg, at, False)
            without.append(evaluated)
            robot.got.clear()
            evaluated, delivered, counts, _ = await _evaluate_once(registry, f"duckdb://{work}/b{k}.duckdb", cfg, at, True)
            with_.append(evaluated)
            until.append(delivered or 0.0)
            sent = Counter(g["path"] for g in robot.got)
    contacts = len(registry.contacts)
    messages = sum(sent.values())
    reached = len(sent)  # contacts whose routes matched an alert (a small province may lack a type)
    slower = statistics.median(with_) / statistics.median(without) - 1
    return "\n".join([
        f"## Alert delivery: {institutions} institutions, {alerts} alerts opened in one evaluation, "
        f"{contacts} contacts, robots answering in {robot_delay_s:g} s (median of {repeats})",
        "",
        "| figure | value |",
        "|---|---|",
        f"| evaluation without contacts | {statistics.median(without):.2f} s |",
        f"| evaluation with contacts (sender running beside it) | {statistics.median(with_):.2f} s ({slower:+.0%}) |",
        f"| until every contact has its digest (from the evaluation's start) | {statistics.median(until):.2f} s |",
        f"| messages sent, last run | {messages} to {reached} of {contacts} contacts (most to one contact: "
        f"{max(sent.values(), default=0)}) |",
        f"| the old path, for comparison (computed, not run) | one message per event per robot, awaited in the "
        f"evaluation: {alerts} per robot, {alerts / 20:.0f} min at DingTalk's 20 a minute |",
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--institutions", type=int, default=100)
    p.add_argument("--robot-delay", type=float, default=2.0)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    print(asyncio.run(run(args.institutions, args.robot_delay, args.repeats)))


if __name__ == "__main__":
    main()
