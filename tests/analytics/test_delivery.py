"""Alerts reach the right contacts, once, without slowing the evaluation (real HTTP endpoints, real DuckDB).

The registry is the tiny province (inst-a: Yinchuan, education; inst-b: Wuzhong, office); nothing has
ever reported, so the silent rule opens three warnings (silent for a day, under 72 h): a-e1 and a-w1 (inst-a), b-w1 (inst-b).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from urllib.parse import unquote_plus

import pytest

from analytics.alerts import load_book
from analytics.notifiers import http_notifier
from analytics.runner import evaluate
from analytics.sender import Sender
from meterwatch.registry import load_registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import AlertPoint, DeliveryPoint, open_store
from tests.analytics.robots import robot_server
from tests.e2e.conftest import eventually
from tests.helpers import tiny_registry

AT = 1_764_000_000
HEADER = "id,name,channel,address,scope,rules,min_severity,quiet_hours\n"


def _contacts(base: str) -> str:
    """Overlapping routes: a city, the province (twice on one address), a type, an institution."""
    return HEADER + (
        f"yc,银川运维,dingtalk,{base}/yc?access_token=T,city:yinchuan,*,info,\n"
        f"prov,自治区能源办,webhook,{base}/prov,province,*,warning,\n"
        f"prov-2,自治区能源办(静默),webhook,{base}/prov,province,silent,info,\n"   # same address: one recipient
        f"edu,教育口,wecom,{base}/edu?key=K,type:education,silent|leak,warning,\n"
        f"wz-leak,吴忠漏水,sms_webhook,{base}/wz,city:wuzhong,leak,info,\n"          # no leak: hears nothing
        f"b-only,二号楼,webhook,{base}/b,institution:inst-b,*,warning,\n"
        f"duty,夜间值班,webhook,{base}/duty,province,*,critical,\n"                  # warnings only: nothing
    )


@pytest.fixture
async def province(tmp_path, duck_url):
    tiny_registry(tmp_path / "registry")
    store = open_store(duck_url)
    await store.open()
    yield tmp_path, store
    await store.close()


def _load(tmp_path, base: str):
    (tmp_path / "registry" / "contacts.csv").write_text(_contacts(base), encoding="utf-8")
    registry, problems = load_registry(tmp_path / "registry")
    assert problems == []
    return registry


def _cfg(tmp_path, **kw) -> AnalyticsSettings:
    return AnalyticsSettings(state_file=tmp_path / "alerts.json", lookback_days=1.0, delivery_retry_s=0.2, **kw)


def _alerts_of(got: list[dict], path: str) -> list[list[str]]:
    """Per message to ``path``: the devices its digest names, in order."""
    msgs = [g["body"] for g in got if g["path"] == path]
    out = []
    for body in msgs:
        text = body.get("markdown", {}).get("text") or body.get("markdown", {}).get("content") \
            or body.get("text", "")
        out.append(sorted(d for d in ("a-e1", "a-w1", "b-w1") if f"表计 {d}" in text))
    return out


async def test_each_contact_gets_one_digest_of_its_alerts_and_a_slow_robot_delays_no_evaluation(province):
    tmp_path, store = province
    async with robot_server(delay_s=2.0) as robot:  # every endpoint answers after 2 s
        registry = _load(tmp_path, robot.base)
        cfg = _cfg(tmp_path)
        book = load_book(cfg.state_file, update_interval_s=0)
        hook = http_notifier("webhook", f"{robot.base}/notifier", per_minute=6000)  # [[analytics.notifiers]]
        sender = Sender(book, registry, cfg, [hook], store)
        stop = asyncio.Event()
        running = asyncio.create_task(sender.run(stop))
        result = await evaluate(store, registry, cfg, book, AT, [hook], rules=["silent"])
        # the evaluation is over, its alerts stored, while no endpoint has answered yet
        assert sorted(e.device for e in result.events) == ["a-e1", "a-w1", "b-w1"]
        assert len(await store.fetch(AlertPoint)) == 3
        assert robot.got == [] and sorted(m.contact for m in book.messages) == ["b-only", "edu", "prov", "yc"]
        assert await eventually(lambda: sender.counts["sent"], 4, timeout=30) == 4
        assert await eventually(lambda: book.outbox.get(hook.key), None, timeout=30) is None  # its 3 events
        stop.set()
        await running
    assert _alerts_of(robot.got, "/yc") == [["a-e1", "a-w1"]]  # Yinchuan's operators: only their city
    assert _alerts_of(robot.got, "/prov") == [["a-e1", "a-w1", "b-w1"]]  # one digest for the two routes
    assert _alerts_of(robot.got, "/edu") == [["a-e1", "a-w1"]]
    assert _alerts_of(robot.got, "/b") == [["b-w1"]]
    assert _alerts_of(robot.got, "/wz") == [] and _alerts_of(robot.got, "/duty") == []
    assert sorted(g["body"]["device"] for g in robot.got if g["path"] == "/notifier") == ["a-e1", "a-w1", "b-w1"]
    assert book.messages == [] and sorted(sender.counts.items()) == [("sent", 4)]
    stored = await store.fetch(DeliveryPoint)
    assert sorted((d.contact, d.channel, d.outcome) for d in stored) == [
        ("b-only", "webhook", "sent"), ("edu", "wecom", "sent"), ("prov", "webhook", "sent"), ("yc", "dingtalk", "sent")]
    prov = next(d for d in stored if d.contact == "prov")
    assert sorted(prov.alerts.split(",")) == sorted(e.id for e in result.events)


async def test_digest_text_is_chinese_first_with_institution_and_rule_label(province):
    tmp_path, store = province
    async with robot_server() as robot:
        registry = _load(tmp_path, robot.base)
        cfg = _cfg(tmp_path)
        book = load_book(cfg.state_file, update_interval_s=0)
        await evaluate(store, registry, cfg, book, AT, [], rules=["silent"])
        assert await Sender(book, registry, cfg, [], store).drain(30)
    ding = next(g["body"] for g in robot.got if g["path"] == "/yc")
    assert ding["msgtype"] == "markdown" and ding["markdown"]["title"] == "[能耗告警 meterwatch] 新告警 2 条"
    text = ding["markdown"]["text"]
    assert "银川市第1中学" in text and "吴忠" not in text and text.count("**新告警**") == 2
    hook = next(g["body"] for g in robot.got if g["path"] == "/prov")
    assert sorted(a["device"] for a in hook["alerts"]) == ["a-e1", "a-w1", "b-w1"]


async def test_a_restart_in_the_middle_of_a_backlog_neither_loses_nor_resends(province):
    tmp_path, store = province
    async with robot_server() as robot:
        registry = _load(tmp_path, robot.base)
        cfg = _cfg(tmp_path)
        book = load_book(cfg.state_file, update_interval_s=0)
        await evaluate(store, registry, cfg, book, AT, [], rules=["silent"])
        robot.answers += [(503, {"errmsg": "busy"})] * 3  # the first three requests fail
        first = Sender(book, registry, cfg, [], store)
        assert not await first.drain(30, retry=False)  # one pass: one sent, three backed off; the process ends
        assert dict(first.counts) == {"sent": 1, "failed": 3}
        (sent_first,) = [g["path"] for g in robot.got if g["status"] == 200]
        # a new process, from the state file alone
        again = load_book(cfg.state_file, update_interval_s=0)
        assert len(again.messages) == 3 and all(m.attempts == 1 and m.error for m in again.messages)
        assert await eventually(lambda: _drained(again, registry, cfg, store), True, timeout=30) is True
    paths = [g["path"] for g in robot.got]
    assert sorted(paths) == sorted(["/yc", "/prov", "/edu", "/b"] + [p for p in {"/yc", "/prov", "/edu", "/b"}
                                                                     if p != sent_first])
    assert paths.count(sent_first) == 1  # delivered before the restart: never again
    assert await _outcomes(store) == {"failed": 3, "sent": 4}
    assert load_book(cfg.state_file, update_interval_s=0).messages == []


async def _drained(book, registry, cfg, store) -> bool:
    await Sender(book, registry, cfg, [], store).drain(1)
    return not book.messages


async def _outcomes(store) -> dict[str, int]:
    counts: dict[str, int] = {}
    for d in await store.fetch(DeliveryPoint):
        counts[d.outcome] = counts.get(d.outcome, 0) + 1
    return counts


async def test_dingtalk_signed_robot_gets_timestamp_and_sign_and_no_secret(province, caplog):
    tmp_path, store = province
    secret = "SEC0123456789abcdef"
    async with robot_server() as robot:
        registry = _load(tmp_path, robot.base)
        cfg = _cfg(tmp_path, contact_secrets={"yc": secret})
        book = load_book(cfg.state_file, update_interval_s=0)
        await evaluate(store, registry, cfg, book, AT, [], rules=["silent"])
        assert await Sender(book, registry, cfg, [], store).drain(30)
    (ding,) = [g for g in robot.got if g["path"] == "/yc"]
    query = ding["query"]
    assert query["access_token"] == "T" and query["timestamp"].isdigit()
    expected = base64.b64encode(hmac.new(secret.encode(), f"{query['timestamp']}\n{secret}".encode(),
                                         hashlib.sha256).digest()).decode()
    assert unquote_plus(ding["query"]["sign"]) == expected or ding["query"]["sign"] == expected
    assert all(secret not in r.getMessage() + str(vars(r)) for r in caplog.records
               if not r.name.startswith("aiohttp.access"))


async def test_sms_gateway_gets_plain_text_and_the_alert_ids(province):
    tmp_path, store = province
    async with robot_server() as robot:
        (tmp_path / "registry" / "contacts.csv").write_text(
            HEADER + f"sms-b,二号楼短信,sms_webhook,{robot.base}/sms?to=13800000000,institution:inst-b,*,info,\n",
            encoding="utf-8")
        registry, _ = load_registry(tmp_path / "registry")
        cfg = _cfg(tmp_path)
        book = load_book(cfg.state_file, update_interval_s=0)
        result = await evaluate(store, registry, cfg, book, AT, [], rules=["silent"])
        assert await Sender(book, registry, cfg, [], store).drain(30)
    ((sms),) = robot.got
    assert sms["query"] == {"to": "13800000000"}
    assert sms["body"]["alert_ids"] == [e.id for e in result.events if e.device == "b-w1"]
    text = sms["body"]["text"]
    heading, line = text.splitlines()
    assert heading == "[能耗告警 meterwatch] 新告警 1 条"
    assert line.startswith("新告警 ") and "｜吴忠市1号政务楼｜表计 b-w1｜" in line
    assert "**" not in text and "###" not in text and len(text) <= 500


async def test_quiet_hours_hold_a_digest_until_they_end(province):
    tmp_path, store = province
    async with robot_server() as robot:
        (tmp_path / "registry" / "contacts.csv").write_text(
            HEADER + f"night,夜班,webhook,{robot.base}/night,province,*,info,22:00-07:00\n", encoding="utf-8")
        registry, _ = load_registry(tmp_path / "registry")
        cfg = _cfg(tmp_path)
        book = load_book(cfg.state_file, update_interval_s=0)
        await evaluate(store, registry, cfg, book, AT, [], rules=["silent"])  # AT is 00:00 local: quiet
        (held,) = book.messages
        assert held.not_before == AT + 7 * 3600  # 07:00 local, warnings only
        assert await Sender(book, registry, cfg, [], store, clock=lambda: AT + 3600).drain(5)  # nothing may go
        assert robot.got == [] and book.messages == [held]
        assert await Sender(book, registry, cfg, [], store, clock=lambda: AT + 7 * 3600).drain(30)
        assert [g["path"] for g in robot.got] == ["/night"] and book.messages == []
