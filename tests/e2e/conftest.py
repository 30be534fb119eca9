from __future__ import annotations

import asyncio
import contextlib
import inspect
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from collector.service import Collector
from meterwatch.registry import Registry
from meterwatch.settings import CollectorSettings, Settings
from meterwatch.store import open_store
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


async def _poll(probe: Callable[[], object]) -> object:
    value = probe()
    return await value if inspect.isawaitable(value) else value


async def eventually(probe: Callable[[], object], expected: object, timeout: float = 15.0) -> object:
    """Poll ``probe`` (plain or async) until it returns ``expected`` (or time out and return what it last gave).

    The way to wait for something to happen: never a fixed sleep.  Assert on the result, so that a timeout
    shows the value that was there instead."""
    deadline = time.monotonic() + timeout
    value = await _poll(probe)
    while value != expected and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        value = await _poll(probe)
    return value


async def until(condition: Callable[[], object], what: str, timeout: float = 15.0) -> None:
    """Wait until ``condition()`` (plain or async) is true; fail naming ``what`` if it is not by the deadline."""
    if await eventually(lambda: _truth(condition), True, timeout) is not True:
        pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


async def _truth(condition: Callable[[], object]) -> bool:
    return bool(await _poll(condition))


async def log_says(log: Path, text: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    """Wait until a child process's log file contains ``text``; fail with the log if it exits or times out."""
    await until(lambda: text in log.read_text(errors="replace") or proc.poll() is not None,
                f"{text!r} in {log}", timeout)
    if text not in log.read_text(errors="replace"):
        pytest.fail(f"process exited with {proc.returncode} before logging {text!r}:\n{log.read_text()}")



async def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET, or (0, "") while nothing answers."""
    import aiohttp

    try:
        async with aiohttp.ClientSession() as http, http.get(url) as answer:
            return answer.status, await answer.text()
    except aiohttp.ClientError:
        return 0, ""


def metric_value(text: str, name: str) -> float | None:
    """A sample's value in Prometheus text (``name`` with its labels), None if absent."""
    line = next((line for line in text.splitlines() if line.startswith(name + " ")), None)
    return float(line.split()[1]) if line else None
