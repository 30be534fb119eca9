"""Shared fixtures: real servers, a small registry, settings."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.servers import Server, ServerUnavailable, start_influxd, start_mosquitto

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"required server unavailable under CI=true: {reason}")
    pytest.skip(f"server unavailable (install the Debian packages or run scripts/test.sh): {reason}")


def _serve(start, tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Server]:
    try:
        server = start(tmp_path_factory.mktemp(name))
    except ServerUnavailable as exc:
        _unavailable(str(exc))
        return
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(start_mosquitto, tmp_path_factory, "mosquitto")


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from _serve(start_influxd, tmp_path_factory, "influxd")


@pytest.fixture
def influx_url(influxd: Server) -> str:
    """A fresh database per test on the shared server."""
    return f"influxdb://127.0.0.1:{influxd.port}/t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def duck_url(tmp_path: Path) -> str:
    return f"duckdb://{tmp_path / 'store.duckdb'}"


@pytest.fixture(params=["duckdb", "influxdb"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "duckdb":
        return f"duckdb://{tmp_path / 'store.duckdb'}"
    server = request.getfixturevalue("influxd")
    return f"influxdb://127.0.0.1:{server.port}/t_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 1 MiB tmpfs (needs root and ``mount``): a disk that fills up, for ENOSPC."""
    import subprocess

    target = tmp_path / "tiny"
    target.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(target)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        reason = f"cannot mount a tmpfs: {mounted.stderr.strip()}"
        if IN_CI:
            pytest.fail(f"needed under CI=true: {reason}")
        pytest.skip(reason)
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
