"""Escalation: an unacknowledged alert climbs from the institution's contacts to the city's, then the
province's, reminding those told before; acknowledgement stops it (real DuckDB, real local webhooks).

Nothing ever reported in the tiny province, so the silent rule keeps three warnings open: a-e1, a-w1 (inst-a,
Yinchuan: no institution or city contact, so the province hears at once) and b-w1 (inst-b, Wuzhong)."""

from __future__ import annotations

import pytest

from analytics.alerts import load_book
from analytics.runner import evaluate
from analytics.sender import Sender
from analytics.service import acknowledge
from meterwatch.registry import load_registry
from meterwatch.settings import AnalyticsSettings, EscalationSettings
from meterwatch.store import open_store
from tests.analytics.robots import robot_server
from tests.helpers import tiny_registry

AT = 1_764_000_000
HOUR = 3600


@pytest.fixture
async def setup(tmp_path, duck_url):
    tiny_registry(tmp_path / "registry")
    store = open_store(duck_url)
    await store.open()
    async with robot_server() as robot:
        (tmp_path / "registry" / "contacts.csv").write_text(
            "id,name,channel,address,scope,rules,min_severity,quiet_hours\n"
            f"b-duty,二号楼值班,webhook,{robot.base}/inst,institution:inst-b,*,info,\n"
            f"wz-ops,吴忠运维,webhook,{robot.base}/city,city:wuzhong,*,info,\n"
            f"prov,能源办,webhook,{robot.base}/prov,province,*,info,\n", encoding="utf-8")
        registry, _ = load_registry(tmp_path / "registry")
        cfg = AnalyticsSettings(state_file=tmp_path / "alerts.json", lookback_days=1.0,
                                escalation=EscalationSettings(enabled=True, after_s={"warning": HOUR}))
        yield registry, store, cfg, robot
    await store.close()


async def _run(setup, at: int) -> dict[str, list[tuple[str, str]]]:
    """One evaluation at ``at`` from the saved state, its digests delivered: per endpoint, (device, state)."""
    registry, store, cfg, robot = setup
    robot.got.clear()
    book = load_book(cfg.state_file, update_interval_s=10**9)  # no updates: only opens, reminders, acks
    await evaluate(store, registry, cfg, book, at, [], rules=["silent"])
    assert await Sender(book, registry, cfg, [], store).drain(30)
    return {g["path"]: sorted((a["device"], a["state"]) for a in g["body"]["alerts"]) for g in robot.got}


async def test_unacknowledged_alerts_climb_a_level_at_a_time_until_acknowledged(setup):
    assert await _run(setup, AT) == {"/inst": [("b-w1", "open")],
                                     "/prov": [("a-e1", "open"), ("a-w1", "open")]}
    assert await _run(setup, AT + HOUR // 2) == {}  # not yet: nothing new, nobody reminded
    reminded = {"/inst": [("b-w1", "reminder")], "/city": [("b-w1", "reminder")],  # one level up
                "/prov": [("a-e1", "reminder"), ("a-w1", "reminder")]}  # the top level: reminded again
    assert await _run(setup, AT + HOUR) == reminded
    assert await _run(setup, AT + 2 * HOUR) == {
        **{p: [("b-w1", "reminder")] for p in ("/inst", "/city")},
        "/prov": [("a-e1", "reminder"), ("a-w1", "reminder"), ("b-w1", "reminder")]}  # the province now
    registry, store, cfg, _ = setup
    book = load_book(cfg.state_file, update_interval_s=10**9)
    assert await acknowledge(book, book.alerts["silent|b-w1"].id, "张工", store, [])
    assert await _run(setup, AT + 3 * HOUR) == {  # the ack goes to those told; b-w1 is reminded no more
        **{p: [("b-w1", "acknowledged")] for p in ("/inst", "/city")},
        "/prov": [("a-e1", "reminder"), ("a-w1", "reminder"), ("b-w1", "acknowledged")]}


async def test_without_escalation_every_matching_contact_hears_at_once(setup):
    registry, store, cfg, robot = setup
    cfg = cfg.model_copy(update={"escalation": EscalationSettings()})
    assert await _run((registry, store, cfg, robot), AT) == {
        "/inst": [("b-w1", "open")], "/city": [("b-w1", "open")],
        "/prov": [("a-e1", "open"), ("a-w1", "open"), ("b-w1", "open")]}
    assert await _run((registry, store, cfg, robot), AT + 5 * HOUR) == {}  # and no reminders
