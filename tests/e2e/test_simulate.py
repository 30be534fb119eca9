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
from tests.e2e.conftest import make_settings, running_collector, until

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

    async def scenario() -> tuple[int, int, int, int, Counter]:
        async with running_collector(settings, registry) as collector:
            # a whole day, ending now: six hours before dawn (China time) may hold no weighing at all
            await asyncio.to_thread(main, ["simulate", "publish", "--hours", "24", "--speed", "1000000",
                                           "--labels", str(labels)])
            published = int(re.search(r"published (\d+) messages", capsys.readouterr().out).group(1))
            await until(lambda: collector.metrics.received >= published, f"the collector to receive {published}")
        store = collector.store  # stopped: everything it received is written (the shutdown flush)
        await store.open()
        try:
            rejects = Counter(r.reason for r in await store.fetch(RejectRecord))
            return (published, collector.metrics.received, await store.count(ReadingPoint),
                    await store.count(WeighingPoint), rejects)
        finally:
            await store.close()

    published, received, readings, weighings, rejects = asyncio.run(scenario())
    rows = list(csv.DictReader(labels.open()))
    expected = Counter(r["expect"].removeprefix("reject:") for r in rows if r["expect"].startswith("reject:"))
    assert received == published
    assert rejects == expected  # every injected spoof / garbage / ghost device refused, nothing else
    assert readings > 500 and weighings > 0


def test_same_seed_same_registry(tmp_path):
    for name in ("a", "b"):
        assert main(["simulate", "registry", "--out", str(tmp_path / name), "--institutions", "30", "--seed", "9"]) == 0
    for f in ("institutions.csv", "devices.csv", "cards.csv"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes()
