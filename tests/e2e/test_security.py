"""TLS, passwords and the per-gateway ACL on a real mosquitto; no secret in the logs."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr

from collector.service import Collector
from meterwatch.log import LogfmtFormatter
from meterwatch.settings import CollectorSettings, Settings
from meterwatch.store import ReadingPoint, open_store
from tests.conftest import _unavailable
from tests.e2e.conftest import until
from tests.helpers import tiny_registry
from benchmarks.servers import ServerUnavailable, start_mosquitto

pytestmark = pytest.mark.servers
COLLECTOR_PASSWORD = "c0llector-s3cret-" + uuid.uuid4().hex[:6]
GATEWAY_PASSWORD = "gw-s3cret"
ACL = """user gw-a
topic write meterwatch/up/inst-a/#
user collector
topic read meterwatch/up/#
topic write meterwatch/status/#
"""


def _run(*argv: str, cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki_and_users(d: Path) -> None:
    if shutil.which("openssl") is None or shutil.which("mosquitto_passwd") is None:
        _unavailable("openssl and mosquitto_passwd are needed for the TLS / ACL test")
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
         "-days", "2", "-subj", "/CN=meterwatch test CA", cwd=d)
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
         "-subj", "/CN=localhost", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
         "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / "passwd").touch()
    _run("mosquitto_passwd", "-b", "passwd", "gw-a", GATEWAY_PASSWORD, cwd=d)
    _run("mosquitto_passwd", "-b", "passwd", "collector", COLLECTOR_PASSWORD, cwd=d)
    (d / "acl").write_text(ACL)


@pytest.fixture
def secure_broker(tmp_path):
    d = tmp_path / "broker"
    d.mkdir()
    make_pki_and_users(d)
    conf = ("cafile {dir}/ca.crt\ncertfile {dir}/server.crt\nkeyfile {dir}/server.key\n"
            "password_file {dir}/passwd\nacl_file {dir}/acl\n")
    try:
        server = start_mosquitto(d, conf, anonymous=False)
    except ServerUnavailable as exc:
        _unavailable(str(exc))
    yield server
    server.stop()


def gateway_publish(server, topic: str, payload: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(server.port), "--cafile",
                           str(server.workdir / "ca.crt"), "-u", "gw-a", "-P", GATEWAY_PASSWORD, "-V", "mqttv5",
                           "-q", "1", "-t", topic, "-m", payload], capture_output=True, text=True, timeout=10)


async def test_tls_password_acl_and_no_secret_in_logs(secure_broker, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    registry = tiny_registry(tmp_path / "registry")
    store_url = f"duckdb://{tmp_path / 's.duckdb'}"
    settings = Settings(broker=f"mqtts://127.0.0.1:{secure_broker.port}", broker_user="collector",
                        broker_password=SecretStr(COLLECTOR_PASSWORD), broker_ca_file=secure_broker.workdir / "ca.crt",
                        store=store_url, registry=tmp_path / "registry",
                        collector=CollectorSettings(client_id="secure", batch_interval_s=0.2,
                                                    spool_dir=tmp_path / "spool"))
    store = open_store(store_url)
    collector = Collector(settings, registry, store)
    stop = asyncio.Event()
    task = asyncio.create_task(collector.run(stop))
    try:
        await asyncio.wait_for(collector.connected.wait(), 10)
        t0 = int(time.time()) - 3600
        allowed = gateway_publish(secure_broker, "meterwatch/up/inst-a/a-w1/reading",
                                  json.dumps({"ts": t0, "value": 7.0}))
        denied = gateway_publish(secure_broker, "meterwatch/up/inst-b/b-w1/reading",
                                 json.dumps({"ts": t0, "value": 9.0}))
        # A marker published after the refused one: a leaked message would have been routed before it.
        marker = gateway_publish(secure_broker, "meterwatch/up/inst-a/a-w1/reading",
                                 json.dumps({"ts": t0 + 900, "value": 8.0}))
        assert "Not authorized" not in allowed.stderr + marker.stderr
        assert "Not authorized" in denied.stderr  # MQTT 5 reason code 135 from the broker
        await until(lambda: collector.metrics.stored >= 2, "the allowed reading and the marker to be stored")
    finally:
        stop.set()
        await task
    assert collector.metrics.received == 2  # the refused publish never reached the collector
    await store.open()
    assert [(r.device, r.register) for r in await store.fetch(ReadingPoint)] == [("a-w1", 7.0), ("a-w1", 8.0)]
    await store.close()
    formatter = LogfmtFormatter()
    text = "\n".join(formatter.format(r) for r in caplog.records)
    assert "connected and subscribed" in text
    assert COLLECTOR_PASSWORD not in text and COLLECTOR_PASSWORD not in repr(settings)


def test_wrong_password_is_refused(secure_broker):
    result = subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(secure_broker.port), "--cafile",
                             str(secure_broker.workdir / "ca.crt"), "-u", "gw-a", "-P", "nope", "-q", "1",
                             "-t", "meterwatch/up/inst-a/a-w1/reading", "-m", "{}"], capture_output=True, text=True)
    assert result.returncode != 0 and "not authori" in (result.stdout + result.stderr).lower()
