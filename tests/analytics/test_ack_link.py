"""Acknowledge from the message: the digest's link, served by the analytics HTTP service (real aiohttp, real
DuckDB); an altered or expired link is refused with 403 and counted; /healthz and /metrics answer."""

from __future__ import annotations

import re
import time

import aiohttp
import pytest

from analytics.alerts import load_book
from analytics.metrics import AnalyticsMetrics
from analytics.runner import evaluate
from analytics.sender import Sender
from analytics.service import start_http
from meterwatch.registry import load_registry
from meterwatch.settings import AnalyticsSettings, Settings
from meterwatch.store import AlertPoint, open_store
from tests.analytics.robots import robot_server
from tests.helpers import tiny_registry

AT = 1_764_000_000
SECRET = "ack-secret-5b1e"


@pytest.fixture
async def served(tmp_path, duck_url):
    tiny_registry(tmp_path / "registry")
    store = open_store(duck_url)
    await store.open()
    async with robot_server() as robot:
        (tmp_path / "registry" / "contacts.csv").write_text(
            "id,name,channel,address,scope,rules,min_severity,quiet_hours\n"
            f"ops,运维,webhook,{robot.base}/hook,institution:inst-b,*,info,\n", encoding="utf-8")
        registry, _ = load_registry(tmp_path / "registry")
        cfg = AnalyticsSettings(state_file=tmp_path / "alerts.json", lookback_days=1.0, http_listen="127.0.0.1:0",
                                public_url="http://meterwatch.example", ack_secret=SECRET)
        book = load_book(cfg.state_file, update_interval_s=0)
        metrics = AnalyticsMetrics(book)
        http = await start_http(Settings(analytics=cfg), book, store, [], metrics)
        await evaluate(store, registry, cfg, book, AT, [], rules=["silent"])
        assert await Sender(book, registry, cfg, [], store, metrics=metrics).drain(30)
        (digest,) = [g["body"]["text"] for g in robot.got]
        (url,) = re.findall(r"\[确认 ack\]\((http://meterwatch\.example/ack\?[^)]+)\)", digest)  # b-w1's only
        yield f"http://127.0.0.1:{http.port}", url.replace("http://meterwatch.example", ""), book, store
        await http.stop()
    await store.close()


def _fields(path: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&"))


async def test_the_link_in_the_digest_acknowledges_its_alert(served):
    base, path, book, store = served
    alert = book.alerts["silent|b-w1"]
    assert _fields(path)["id"] == alert.id and not alert.acknowledged
    async with aiohttp.ClientSession() as http:
        async with http.get(base + path) as page:  # a preview or a click: shows the button, changes nothing
            assert page.status == 200 and "确认 Acknowledge" in await page.text()
        assert not book.alerts["silent|b-w1"].acknowledged
        async with http.post(base + "/ack", data=_fields(path)) as done:
            assert done.status == 200 and "已确认" in await done.text()
        async with http.post(base + "/ack", data=_fields(path)) as again:  # twice: said, not repeated
            assert again.status == 200 and "already acknowledged" in await again.text()
        async with http.get(base + "/metrics") as scraped:
            metrics = await scraped.text()
    assert book.alerts["silent|b-w1"].acknowledged
    assert load_book(book.path, update_interval_s=0).alerts["silent|b-w1"].acknowledged  # saved
    assert [(a.id, a.state) for a in await store.fetch(AlertPoint, device="b-w1")] == [
        (alert.id, "open"), (alert.id, "acknowledged")]
    assert 'meterwatch_ack_links_total{outcome="acknowledged"} 1.0' in metrics
    assert 'meterwatch_ack_links_total{outcome="not_open"} 1.0' in metrics
    assert 'meterwatch_alert_deliveries_total{channel="webhook",outcome="sent"} 1.0' in metrics


@pytest.mark.parametrize("alter", ["id", "exp", "signature", "expired"])
async def test_an_altered_or_expired_link_is_refused_and_counted(served, alter):
    base, path, book, _ = served
    fields = _fields(path)
    other = book.alerts["silent|a-w1"].id  # another open alert: a link is for one alert only
    if alter == "id":
        fields["id"] = other
    elif alter == "exp":
        fields["exp"] = str(int(fields["exp"]) + 86400)
    elif alter == "signature":
        fields["signature"] = fields["signature"][:-1] + ("0" if fields["signature"][-1] != "0" else "1")
    else:  # a link signed properly but expired an hour ago
        from analytics.acklink import signature
        fields["exp"] = str(int(time.time()) - 3600)
        fields["signature"] = signature(fields["id"], int(fields["exp"]), SECRET)
    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/ack", data=fields) as refused:
            assert refused.status == 403
        async with http.get(base + "/ack", params=fields) as refused_page:
            assert refused_page.status == 403
        async with http.get(base + "/metrics") as scraped:
            metrics = await scraped.text()
    reason = "expired" if alter == "expired" else "bad_signature"
    assert f'meterwatch_ack_links_total{{outcome="{reason}"}} 2.0' in metrics
    assert not any(a.acknowledged for a in book.alerts.values())


async def test_healthz_answers_ok_while_evaluations_succeed(served):
    base, *_ = served
    async with aiohttp.ClientSession() as http, http.get(base + "/healthz") as health:
        assert health.status == 200 and await health.text() == "ok\n"
