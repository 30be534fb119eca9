from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from collector.service import Collector
from meterwatch.registry import Registry
from meterwatch.settings import CollectorSettings, Settings
from meterwatch.store import Store, open_store
from tests.conftest import _unavailable


def make_settings(broker_port: int, store_url: str, registry_dir, **collector: object) -> Settings:
    cfg = {"client_id": f"test-{uuid.uuid4().hex[:8]}", "batch_interval_s": 0.2,
           "spool_dir": registry_dir.parent / "spool", **collector}
    return Settings(broker=f"mqtt://127.0.0.1:{broker_port}", store=store_url, registry=registry_dir,
                    collector=CollectorSettings(**cfg))


@contextlib.asynccontextmanager
async def running_collector(settings: Settings, registry: Registry) -> AsyncIterator[Collector]:
    store = open_store(settings.store, timeout_s=settings.collector.store_timeout_s)
    collector = Collector(settings, registry, store)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        await asyncio.wait_for(collector.connected.wait(), 10)
        yield collector
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await store.close()


@pytest.fixture
def mosquitto_pub(mosquitto) -> Callable[..., None]:
    binary = shutil.which("mosquitto_pub")
    if binary is None:
        _unavailable("mosquitto_pub not installed (Debian package mosquitto-clients)")

    def publish(topic: str, payload: str | bytes, qos: int = 1) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        subprocess.run([binary, "-h", "127.0.0.1", "-p", str(mosquitto.port), "-q", str(qos), "-t", topic, "-s"],
                       input=data, check=True, timeout=10)
    return publish


async def eventually(probe: Callable[[], Awaitable[object]], expected: object, timeout: float = 15.0) -> object:
    """Poll ``probe`` until it returns ``expected`` (or time out and return what it last gave)."""
    deadline = time.monotonic() + timeout
    value = await probe()
    while value != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        value = await probe()
    return value


async def count_of(store: Store, record_type: type) -> int:
    return await store.count(record_type)
