"""Notifiers against a real local HTTP server started by the test: formats, retries, refusals, rate limit."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from analytics.notifiers import http_notifier
from analytics.notifiers.http import HttpNotifier, NotifyError, RateLimiter
from meterwatch.store import AlertPoint

EVENT = AlertPoint("a1", 1_764_000_000, "open", "yin-off-00001", "yin-off-00001-w1", "leak", "warning",
                   "银川市1号政务楼 水表连续 3 夜最小夜间流量 0.210 m³/h", "minimum night flow 0.210 m3/h",
                   0.21, "m3/h", 1_763_900_000)


@pytest.fixture
async def receiver(unused_tcp_port):
    """A local HTTP server; ``answers`` is consumed one per request, then 200 {"errcode": 0}."""
    got: list[dict] = []
    answers: list[tuple[int, dict]] = []

    async def handle(request: web.Request) -> web.Response:
        got.append({"path": request.path, "query": dict(request.query), "body": await request.json()})
        status, body = answers.pop(0) if answers else (200, {"errcode": 0, "errmsg": "ok"})
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", unused_tcp_port)
    await site.start()
    yield f"http://127.0.0.1:{unused_tcp_port}", got, answers
    await runner.cleanup()


@pytest.fixture
def unused_tcp_port():
    from benchmarks.servers import free_port
    return free_port()


async def test_webhook_sends_the_contract_event(receiver):
    base, got, _ = receiver
    await http_notifier("webhook", f"{base}/hooks/alerts", per_minute=6000).send([EVENT])
    body = got[0]["body"]
    assert got[0]["path"] == "/hooks/alerts"
    assert {k: body[k] for k in ("id", "rule", "state", "institution", "device", "value", "unit")} == {
        "id": "a1", "rule": "leak", "state": "open", "institution": "yin-off-00001",
        "device": "yin-off-00001-w1", "value": 0.21, "unit": "m3/h"}
    assert body["since"] == "2025-11-23T12:13:20Z" and "夜间流量" in body["message"]


async def test_dingtalk_and_wecom_markdown_with_access_token(receiver):
    base, got, _ = receiver
    await http_notifier("dingtalk", f"{base}/robot/send?access_token=SECRET", per_minute=6000).send([EVENT])
    await http_notifier("wecom", f"{base}/cgi-bin/webhook/send?key=SECRET", per_minute=6000).send([EVENT])
    ding, wecom = got[0], got[1]
    assert ding["query"] == {"access_token": "SECRET"} and ding["body"]["msgtype"] == "markdown"
    assert ding["body"]["markdown"]["title"] == "[新告警] 漏水 Leak yin-off-00001"
    assert "yin-off-00001-w1" in ding["body"]["markdown"]["text"]
    assert wecom["body"]["msgtype"] == "markdown" and "漏水 Leak" in wecom["body"]["markdown"]["content"]


async def test_transient_failures_are_retried_and_refusals_are_not(receiver, caplog):
    base, got, answers = receiver
    answers += [(503, {"error": "busy"}), (200, {"errcode": 130101, "errmsg": "send too fast"})]
    notifier = HttpNotifier(f"{base}/robot/send?access_token=SECRET", *_ding(), per_minute=6000, backoff_s=0.01)
    await notifier.send([EVENT])
    assert len(got) == 3  # 503, robot rate-limited (errcode), then accepted
    answers.append((400, {"error": "bad"}))
    with pytest.raises(NotifyError, match="1 of 1"):
        await notifier.send([EVENT])
    assert len(got) == 4  # a 400 is not retried
    ours = [r.getMessage() + str(vars(r)) for r in caplog.records if not r.name.startswith("aiohttp.access")]
    assert ours and not any("SECRET" in text for text in ours)  # (the test's own server logs its URL)


def _ding():
    from analytics.notifiers import dingtalk
    return dingtalk.body, dingtalk.accepted


async def test_rate_limiter_spaces_sends_without_real_waiting():
    now = [0.0]
    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(per_minute=20, burst=2, clock=lambda: now[0], sleep=fake_sleep)
    for _ in range(5):
        await limiter.acquire()
    assert waits == pytest.approx([3.0, 3.0, 3.0])  # 2 at once, then one every 3 s (20 a minute)


async def test_unreachable_receiver_is_an_error_after_retries():
    notifier = HttpNotifier("http://127.0.0.1:9/x", *_ding(), per_minute=6000, retries=2, backoff_s=0.01)
    with pytest.raises(NotifyError):
        await asyncio.wait_for(notifier.send([EVENT]), 10)
