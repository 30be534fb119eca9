"""The supervisor of `meterwatch collect --workers N` (meterwatch_cli/workers.py): layouts it refuses, and what it
does with a worker that keeps dying (real child processes)."""

from __future__ import annotations

import asyncio
import logging
import sys

import pytest

from meterwatch.settings import CollectorSettings, Settings
from meterwatch.store import Batch
from meterwatch.store.spool import DiskSpool
from meterwatch_cli import workers
from meterwatch_cli.main import main
from tests.helpers import tiny_registry


def test_several_workers_on_one_duckdb_file_are_refused(tmp_path, monkeypatch, capsys):
    tiny_registry(tmp_path / "registry")
    monkeypatch.setenv("METERWATCH_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.setenv("METERWATCH_STORE", f"duckdb://{tmp_path / 'mw.duckdb'}")
    assert main(["collect", "--workers", "2"]) == 2
    assert "DuckDB file is held by one process" in capsys.readouterr().err
    assert main(["collect", "--workers", "2", "--partition", "0/2"]) == 2
    assert "one or the other" in capsys.readouterr().err
    assert main(["collect", "--partition", "2/2"]) == 2
    assert "0 <= i < N" in capsys.readouterr().err


def test_default_workers_follow_the_store(monkeypatch):
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 6)
    assert workers.default_workers(Settings(store="influxdb://h:8086/mw")) == 6
    assert workers.default_workers(Settings(store="duckdb:///x.duckdb")) == 1


def test_a_spool_another_layout_left_holding_batches_is_refused(tmp_path, monkeypatch, capsys):
    """Its batches were acknowledged to the broker: only its own process would store them."""
    tiny_registry(tmp_path / "registry")
    DiskSpool(tmp_path / "spool" / "collector-1-p2", 1 << 20).append(Batch())
    DiskSpool(tmp_path / "spool" / "collector-1-p0", 1 << 20)  # empty: nothing stranded
    settings = Settings(store="influxdb://127.0.0.1:1/mw", collector=CollectorSettings(spool_dir=tmp_path / "spool"))
    assert workers.stranded_spools(settings, 3) == []
    assert workers.stranded_spools(settings, 2) == [(tmp_path / "spool" / "collector-1-p2", 1)]
    assert workers.stranded_spools(settings, None) == [(tmp_path / "spool" / "collector-1-p2", 1)]
    for key, value in (("REGISTRY", tmp_path / "registry"), ("STORE", "influxdb://127.0.0.1:1/mw"),
                       ("COLLECTOR__SPOOL_DIR", tmp_path / "spool")):
        monkeypatch.setenv(f"METERWATCH_{key}", str(value))
    assert main(["collect", "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "collector-1-p2 holds 1 batch(es)" in err and "--workers 3 or more" in err


class _Dying(workers.Supervisor):
    """Workers that exit 3 at once: a real child process each time."""

    def argv(self, worker: workers.Worker) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.exit(3)"]


async def test_a_worker_that_keeps_dying_is_restarted_with_backoff_then_everything_stops(monkeypatch, caplog):
    monkeypatch.setattr(workers, "BACKOFF_S", 0.01)
    monkeypatch.setattr(workers, "MAX_FAILURES", 3)
    caplog.set_level(logging.INFO, logger="meterwatch.workers")
    supervisor = _Dying(Settings(store="influxdb://127.0.0.1:1/mw"), 2)
    assert await asyncio.wait_for(supervisor.run(asyncio.Event()), 30) == 1
    assert supervisor.gave_up
    restarts = [r for r in caplog.records if r.getMessage() == "collector worker exited; restarting"]
    assert [r.retry_in_s for r in restarts if r.partition == "0/2"] == pytest.approx([0.01, 0.02, 0.04])
    assert all(r.exit_code == 3 for r in restarts)
    assert any(r.getMessage() == "collector worker keeps dying: stopping all workers" for r in caplog.records)
