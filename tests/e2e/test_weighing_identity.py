"""What the collector counts as stored weighings is what a query finds, on InfluxDB and DuckDB alike."""

from __future__ import annotations

import json
import time

import pytest

from meterwatch.registry import Card, load_registry
from meterwatch.store import WeighingPoint, open_store
from simulators.province import Province, write_registry
from tests.e2e.conftest import eventually, make_settings, running_collector
from tests.helpers import tiny_province

pytestmark = pytest.mark.servers
TOPIC = "meterwatch/up/inst-a/a-s1/weighing"


def _registry_with_two_cards_of_one_cleaner(directory):
    base = tiny_province()
    twin = Card("CARD02", "inst-a", "zone-1", "银川市第1中学", "保洁员甲", "recyclable")  # CARD01's tags exactly
    write_registry(Province(base.institutions, base.devices, [*base.cards, twin]), directory)
    registry, problems = load_registry(directory)
    assert problems == []
    return registry


async def test_weighings_in_one_second_are_all_stored_and_found(mosquitto, store_url, mosquitto_pub, tmp_path):
    registry = _registry_with_two_cards_of_one_cleaner(tmp_path / "registry")
    settings = make_settings(mosquitto.port, store_url, tmp_path / "registry")
    ts = int(time.time()) - 600
    sent = [{"ts": ts, "card": "CARD01", "weight_kg": 4.5}, {"ts": ts, "card": "CARD02", "weight_kg": 7.0},
            {"ts": ts, "card": "STRAY1", "weight_kg": 1.25}, {"ts": ts, "card": "STRAY2", "weight_kg": 2.5}]
    async with running_collector(settings, registry) as collector:
        mosquitto_pub(TOPIC, json.dumps({"weighings": sent[:2]}))  # two cards on one scale in one second
        for unknown in sent[2:]:  # two unknown cards in one second: every registry tag is "unknown"
            mosquitto_pub(TOPIC, json.dumps(unknown))
        mosquitto_pub(TOPIC, json.dumps(sent[0]))  # the same weighing redelivered
        assert await eventually(lambda: _settled(collector), (4, 4, 1)) == (4, 4, 1)
    store = open_store(store_url)
    await store.open()
    try:
        assert await store.count(WeighingPoint) == collector.metrics.stored == 4
        found = await store.fetch(WeighingPoint, scale="a-s1")
        assert sorted((w.card, w.weight_kg, w.zone, w.cleaner) for w in found) == [
            ("CARD01", 4.5, "zone-1", "保洁员甲"), ("CARD02", 7.0, "zone-1", "保洁员甲"),
            ("STRAY1", 1.25, "unknown", "unknown"), ("STRAY2", 2.5, "unknown", "unknown")]
    finally:
        await store.close()


async def _settled(collector) -> tuple[int, int, int]:
    m = collector.metrics
    return m.received, m.stored, m.duplicates
