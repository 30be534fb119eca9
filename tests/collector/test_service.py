"""Collector lifecycle without a broker: a dead component stops the process loudly."""

import asyncio
import logging

import pytest

from collector.service import Collector
from meterwatch.settings import CollectorSettings, Settings
from meterwatch.store import open_store
from tests.helpers import tiny_registry


async def test_a_component_that_dies_stops_the_collector_with_an_error(tmp_path, caplog):
    registry = tiny_registry(tmp_path / "registry")
    settings = Settings(broker="mqtt://127.0.0.1:9", store=f"duckdb://{tmp_path / 's.duckdb'}",
                        collector=CollectorSettings(spool_dir=tmp_path / "spool"))
    collector = Collector(settings, registry, open_store(settings.store))

    async def broken_ticker() -> None:
        await asyncio.sleep(0.1)
        raise ZeroDivisionError("bug in a component")

    collector._ticker = broken_ticker  # noqa: SLF001
    with pytest.raises(RuntimeError, match="ticker"):
        await asyncio.wait_for(collector.run(asyncio.Event()), 20)
    assert any(r.levelno == logging.CRITICAL and "died" in r.getMessage() for r in caplog.records)


def test_dead_letters_never_share_a_time_with_other_rejects(tmp_path):
    """InfluxDB keys a reject by tags and time: two rejects in the same nanosecond would be one."""
    from collector.message import Message
    from meterwatch.store import Batch

    registry = tiny_registry(tmp_path / "registry")
    settings = Settings(store=f"duckdb://{tmp_path / 's.duckdb'}", collector=CollectorSettings(spool_dir=tmp_path / "sp"))
    collector = Collector(settings, registry, open_store(settings.store), clock=lambda: 1_700_000_100.0)  # frozen
    refused, stored_twice = collector.ingestor.process([Message("meterwatch/up/inst-a/ghost/reading", b"{}"),
                                                        Message("meterwatch/up/inst-a/a-w1/reading",
                                                                b'{"ts": 1700000000, "value": 1}')])
    dead = collector._dead_letters(Batch(readings=stored_twice.out.readings * 2), "400")  # noqa: SLF001
    times = [r.ts_ns for r in refused.out.rejects + dead]
    assert len(times) == 3 and len(set(times)) == 3
