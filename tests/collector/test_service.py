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
