"""`meterwatch simulate registry` + `simulate publish` through a real mosquitto into the collector."""

from __future__ import annotations

import asyncio
import csv
import re
from collections import Counter

import pytest

from meterwatch_cli.main import main
from meterwatch.registry import load_registry
from meterwatch.store import ReadingPoint, RejectRecord, WeighingPoint
from tests.e2e.conftest import eventually, make_settings, running_collector

pytestmark = pytest.mark.servers


def test_simulated_province_published_and_collected(mosquitto, tmp_path, monkeypatch, capsys):
    registry_dir, store_url = tmp_path / "registry", f"duckdb://{tmp_path / 's.duckdb'}"
    assert main(["simulate", "registry", "--out", str(registry_dir), "--institutions", "12", "--seed", "5"]) == 0
    registry, problems = load_registry(registry_dir)
    assert problems == [] and len(registry.institutions) == 12
    monkeypatch.setenv("METERWATCH_BROKER", f"mqtt://127.0.0.1:{mosquitto.port}")
    monkeypatch.setenv("METERWATCH_REGISTRY", str(registry_dir))
    settings = make_settings(mosquitto.port, store_url, registry_dir)
    labels = tmp_path / "labels.csv"

    async def scenario() -> tuple[int, int, int, Counter]:
        async with running_collector(settings, registry) as collector:
            await asyncio.to_thread(main, ["simulate", "publish", "--hours", "6", "--speed", "1000000",
                                           "--labels", str(labels)])
            store = collector.store
            before = -1
            while before != collector.metrics.received:  # wait until the stream has drained
                before = collector.metrics.received
                await asyncio.sleep(0.5)
            await eventually(lambda: _idle(collector), True)
            rejects = Counter(r.reason for r in await store.fetch(RejectRecord))
            return (collector.metrics.received, await store.count(ReadingPoint), await store.count(WeighingPoint),
                    rejects)

    received, readings, weighings, rejects = asyncio.run(scenario())
    published = int(re.search(r"published (\d+) messages", capsys.readouterr().out).group(1))
    rows = list(csv.DictReader(labels.open()))
    expected = Counter(r["expect"].removeprefix("reject:") for r in rows if r["expect"].startswith("reject:"))
    assert received == published
    assert rejects == expected  # every injected spoof / garbage / ghost device refused, nothing else
    assert readings > 500 and weighings > 0


async def _idle(collector) -> bool:
    return not collector._pending.acks  # noqa: SLF001


def test_same_seed_same_registry(tmp_path):
    for name in ("a", "b"):
        assert main(["simulate", "registry", "--out", str(tmp_path / name), "--institutions", "30", "--seed", "9"]) == 0
    for f in ("institutions.csv", "devices.csv", "cards.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
