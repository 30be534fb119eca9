"""Settings the code reads: a setting that nothing reads, or a default that points somewhere odd, is a lie."""

from __future__ import annotations

from pathlib import Path

from collector.service import Collector
from meterwatch.settings import CollectorSettings, Settings
from meterwatch.store import ReadingPoint, open_store
from tests.helpers import tiny_registry


def test_write_retry_max_s_bounds_the_wait_between_write_retries(tmp_path):
    settings = Settings(store=f"duckdb://{tmp_path / 's.duckdb'}",
                        collector=CollectorSettings(spool_dir=tmp_path / "spool", write_retry_max_s=7.0))
    collector = Collector(settings, tiny_registry(tmp_path / "registry"), open_store(settings.store))
    assert collector.writer.max_probe_interval_s == 7.0
    short = settings.model_copy(update={"collector": CollectorSettings(spool_dir=tmp_path / "spool",
                                                                       write_retry_max_s=0.5)})
    writer = Collector(short, tiny_registry(tmp_path / "registry2"), open_store(settings.store)).writer
    assert (writer.probe_interval_s, writer.max_probe_interval_s) == (0.5, 0.5)  # the first wait is no longer


async def test_the_default_store_is_a_file_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = open_store(Settings().store)
    assert not Path(store.path).is_absolute(), f"default store {Settings().store} is {store.path}"
    await store.open()
    try:
        await store.write_columns(ReadingPoint, {"device": ["d1"], "institution": ["i1"], "city": ["c"],
                                                 "type": ["office"], "kind": ["water"], "ts": [900],
                                                 "register": [1.5]})
        assert await store.count(ReadingPoint) == 1
    finally:
        await store.close()
    assert (tmp_path / "meterwatch.duckdb").is_file()


def test_duckdb_url_forms(tmp_path):
    assert open_store("duckdb:///abs/dir/x.duckdb").path == "/abs/dir/x.duckdb"
    assert open_store("duckdb://rel/x.duckdb").path == "rel/x.duckdb"
    assert open_store("duckdb://./x.duckdb").path == "./x.duckdb"
    assert open_store("duckdb://:memory:").path == ":memory:"
    assert open_store("duckdb://").path == ":memory:"
