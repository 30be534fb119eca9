"""Secrets never leak: redacted URLs in errors and logs, and notifiers never follow a redirect.

Real local HTTP servers: a robot endpoint that redirects to a second one,
which must receive nothing; real ``meterwatch`` processes for the store
and broker URL errors, whose whole output is searched for the secrets.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from aiohttp import web

from analytics.notifiers import http_notifier
from analytics.notifiers.http import NotifyError
from meterwatch.redact import redact_url
from benchmarks.servers import free_port
from meterwatch.store import AlertPoint, open_store
from tests.helpers import tiny_registry

TOKEN = "TOK3N-s3cr3t"
PASSWORD = "pa55-s3cr3t"
EVENT = AlertPoint("a1", 1_764_000_000, "open", "inst-a", "a-w1", "silent", "warning", "无数据", "silent",
                   10.0, "h", 1_763_964_000)


async def _serve(handler) -> tuple[web.AppRunner, str, list[str]]:
    got: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        got.append(str(request.rel_url))
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}", got


def _leaks(caplog: pytest.LogCaptureFixture, *secrets: str) -> list[str]:
    texts = [r.getMessage() + " " + str(vars(r)) for r in caplog.records]
    return [t for t in texts if any(s in t for s in secrets)]


@pytest.mark.parametrize("kind", ["webhook", "dingtalk", "wecom"])
async def test_a_redirect_is_refused_and_the_named_host_gets_nothing(kind, caplog):
    async def accept(_: web.Request) -> web.Response:
        return web.json_response({"errcode": 0})

    elsewhere, elsewhere_url, elsewhere_got = await _serve(accept)

    async def redirect(_: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{elsewhere_url}/steal?access_token={TOKEN}")

    robot, robot_url, robot_got = await _serve(redirect)
    try:
        notifier = http_notifier(kind, f"{robot_url}/robot/send?access_token={TOKEN}", per_minute=6000)
        with caplog.at_level(logging.DEBUG), pytest.raises(NotifyError) as err:
            await notifier.send([EVENT])
    finally:
        await robot.cleanup()
        await elsewhere.cleanup()
    assert len(robot_got) == 1  # one try: a redirect is a refusal, not retried
    assert elsewhere_got == []
    assert TOKEN not in str(err.value) and "access_token=***" in str(err.value)
    assert any("redirect" in r.getMessage() for r in caplog.records)
    assert _leaks(caplog, TOKEN) == []


@pytest.mark.parametrize("answer", ["refused", "500"])
async def test_notifier_failures_log_no_token(answer, caplog):
    async def fail(_: web.Request) -> web.Response:
        return web.json_response({"error": f"bad token {TOKEN}"}, status=500)

    runner, base, got = await _serve(fail)
    if answer == "refused":
        await runner.cleanup()  # nothing listens there any more: connection refused
    notifier = http_notifier("dingtalk", f"{base}/robot/send?access_token={TOKEN}&sign={TOKEN}x", per_minute=6000)
    notifier.backoff_s = 0.01
    try:
        with caplog.at_level(logging.DEBUG), pytest.raises(NotifyError) as err:
            await notifier.send([EVENT])
    finally:
        await runner.cleanup()
    assert len(got) == (3 if answer == "500" else 0)
    assert len([r for r in caplog.records if r.name == "analytics.notifiers.http"]) == 3
    assert TOKEN not in str(err.value)
    assert _leaks(caplog, TOKEN) == []


def test_redact_url_hides_passwords_and_secret_parameters():
    assert redact_url(f"influxdb://admin:{PASSWORD}@db:8086/meterwatch") == "influxdb://admin:***@db:8086/meterwatch"
    assert redact_url(f"https://oapi.dingtalk.com/robot/send?access_token={TOKEN}&timestamp=1&sign=S") == (
        "https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=1&sign=***")
    assert redact_url(f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={TOKEN}").endswith("key=***")
    assert PASSWORD not in redact_url(f"influx://u:{PASSWORD}@[bad/db?token={TOKEN}")  # unparseable: still hidden
    assert redact_url("mqtt://127.0.0.1:1883") == "mqtt://127.0.0.1:1883"


def test_store_url_with_a_mistyped_scheme_hides_its_password():
    with pytest.raises(ValueError) as err:
        open_store(f"influx://admin:{PASSWORD}@db:8086/meterwatch")
    assert PASSWORD not in str(err.value) and "influx://admin:***@db:8086/meterwatch" in str(err.value)


def _analyze(tmp_path, **env: str) -> subprocess.CompletedProcess:
    tiny_registry(tmp_path / "registry")
    full = {**os.environ, "METERWATCH_REGISTRY": str(tmp_path / "registry"),
            "METERWATCH_ANALYTICS__STATE_FILE": str(tmp_path / "alerts.json"),
            "METERWATCH_STORE": f"duckdb:///{tmp_path}/mw.duckdb", **env}
    return subprocess.run([sys.executable, "-m", "meterwatch_cli.main", "analyze", "--once"], env=full,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("env,refused", [
    ({"METERWATCH_STORE": f"influx://admin:{PASSWORD}@127.0.0.1:8086/meterwatch"}, False),
    ({"METERWATCH_BROKER": f"mqtx://analytics:{PASSWORD}@127.0.0.1:1883"}, False),
    ({"METERWATCH_BROKER": f"mqtt://analytics:{PASSWORD}@127.0.0.1:{free_port()}"}, True),  # nobody listens
], ids=["bad-store-scheme", "bad-broker-scheme", "broker-refused"])
def test_analyze_process_never_prints_a_password(env, refused, tmp_path):
    done = _analyze(tmp_path, **env)
    output = done.stdout + done.stderr
    assert PASSWORD not in output, output[-2000:]
    if refused:  # the evaluation stands; the failed delivery is said, and kept for the next run
        assert "notifier failed" in output, output[-2000:]
    else:  # a configuration error stops the process before anything runs, and names the culprit
        assert done.returncode == 2 and "error: bad settings" in done.stderr and "***" in done.stderr, output[-2000:]
