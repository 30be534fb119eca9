"""``meterwatch alerts mute | unmute | list``: muted alerts are evaluated and stored, not sent (real DuckDB, a
real local webhook for the contact and for a notifier)."""

from __future__ import annotations

import pytest

from analytics.alerts import load_book
from analytics.notifiers import http_notifier
from analytics.runner import evaluate
from analytics.sender import Sender
from meterwatch.registry import load_registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import AlertPoint, open_store
from meterwatch_cli.main import main
from tests.analytics.robots import robot_server
from tests.helpers import tiny_registry

AT = 1_764_000_000


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METERWATCH_ANALYTICS__STATE_FILE", str(tmp_path / "alerts.json"))
    monkeypatch.setenv("METERWATCH_ANALYTICS__MUTE_FILE", str(tmp_path / "mutes.json"))
    return tmp_path


async def _evaluate(tmp_path, duck_url, robot):
    tiny_registry(tmp_path / "registry")
    (tmp_path / "registry" / "contacts.csv").write_text(
        "id,name,channel,address,scope,rules,min_severity,quiet_hours\n"
        f"ops,运维,webhook,{robot.base}/contact,province,*,info,\n", encoding="utf-8")
    registry, _ = load_registry(tmp_path / "registry")
    cfg = AnalyticsSettings(state_file=tmp_path / "alerts.json", mute_file=tmp_path / "mutes.json", lookback_days=1.0)
    store = open_store(duck_url)
    await store.open()
    try:
        book = load_book(cfg.state_file, update_interval_s=0)
        hook = http_notifier("webhook", f"{robot.base}/notifier", per_minute=6000)
        await evaluate(store, registry, cfg, book, AT, [hook], rules=["silent"])
        assert await Sender(book, registry, cfg, [hook], store).drain(30)
        return sorted(a.device for a in await store.fetch(AlertPoint))
    finally:
        await store.close()


async def test_a_muted_institution_is_stored_and_listed_but_not_sent(env, duck_url, capsys):
    assert main(["alerts", "mute", "--institution", "inst-a", "--until", "2099-01-01T00:00:00Z",
                 "--reason", "水管改造 pipes being replaced"]) == 0
    async with robot_server() as robot:
        stored = await _evaluate(env, duck_url, robot)
    assert stored == ["a-e1", "a-w1", "b-w1"]  # evaluated and stored, all three
    (digest,) = [g["body"] for g in robot.got if g["path"] == "/contact"]
    assert [a["device"] for a in digest["alerts"]] == ["b-w1"]
    assert [g["body"]["device"] for g in robot.got if g["path"] == "/notifier"] == ["b-w1"]
    capsys.readouterr()
    assert main(["alerts", "list"]) == 0
    out = capsys.readouterr().out
    assert "3 alert(s)" in out and out.count("open, muted (水管改造 pipes being replaced)") == 2
    assert "mute: institution inst-a until 2099-01-01 08:00 by cli: 水管改造 pipes being replaced" in out
    assert main(["alerts", "list", "--institution", "inst-b"]) == 0
    assert "1 alert(s)" in capsys.readouterr().out


async def test_a_muted_rule_or_device_and_unmute(env, duck_url, capsys):
    assert main(["alerts", "mute", "--device", "a-w1", "--until", "2h", "--reason", "换表 meter swap"]) == 0
    assert main(["alerts", "mute", "--rule", "leak", "--until", "1d", "--reason", "夜间施工"]) == 0
    assert main(["alerts", "unmute", "--rule", "leak"]) == 0
    assert main(["alerts", "unmute", "--rule", "leak"]) == 1  # nothing left to unmute: said
    async with robot_server() as robot:
        await _evaluate(env, duck_url, robot)
    (digest,) = [g["body"] for g in robot.got if g["path"] == "/contact"]
    assert sorted(a["device"] for a in digest["alerts"]) == ["a-e1", "b-w1"]


def test_mute_refuses_a_past_or_unreadable_time(env, capsys):
    assert main(["alerts", "mute", "--rule", "silent", "--until", "2001-01-01T00:00:00Z", "--reason", "x"]) == 2
    assert main(["alerts", "mute", "--rule", "silent", "--until", "tomorrow", "--reason", "x"]) == 2
    err = capsys.readouterr().err
    assert "is not in the future" in err and "--until 'tomorrow'" in err
    assert not (env / "mutes.json").exists()
