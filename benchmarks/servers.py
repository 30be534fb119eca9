"""Real mosquitto and influxd as child processes on free loopback ports; a local HTTP robot in-process.

Used by the test fixtures and by the benchmarks.  A server that cannot be
started raises ``ServerUnavailable``; the fixtures turn that into a failure
under CI=true and a skip with the reason otherwise.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from meterwatch.store import Store, open_store


class ServerUnavailable(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerUnavailable(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise ServerUnavailable(f"{what} did not listen on {port} within {timeout}s")


@dataclass
class Server:
    """A running child server; ``stop``/``start`` let tests simulate outages on the same port."""

    name: str
    argv: list[str]
    port: int
    workdir: Path
    proc: subprocess.Popen | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        log = open(self.workdir / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        _wait_port(self.port, self.proc, self.name)
        if self.name == "influxd":
            self._wait_ping()

    def _wait_ping(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping", timeout=1) as r:
                    if r.status == 204:
                        return
            except OSError:
                time.sleep(0.05)
        raise ServerUnavailable("influxd /ping never answered 204")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log_text(self) -> str:
        path = self.workdir / f"{self.name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _binary(name: str, path: str) -> str:
    found = shutil.which(name) or (path if os.path.exists(path) else None)
    if not found:
        raise ServerUnavailable(f"{name} not installed (Debian package: apt-get install {name})")
    return found


MOSQUITTO_BASE = """\
listener {port} 127.0.0.1
allow_anonymous {anonymous}
persistence false
log_dest stderr
user root
# Zero-loss settings: the defaults (1000 queued, 20 in flight) drop or throttle
# QoS 1 traffic to persistent-session subscribers.
max_queued_messages 1000000
max_inflight_messages 1000
"""


def start_mosquitto(workdir: Path | None = None, extra_conf: str = "", anonymous: bool = True) -> Server:
    """A mosquitto on a free port; ``extra_conf`` is appended to the listener's settings."""
    binary = _binary("mosquitto", "/usr/sbin/mosquitto")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="mw-mosquitto-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(MOSQUITTO_BASE.format(port=port, anonymous=str(anonymous).lower()) + extra_conf.format(dir=workdir))
    server = Server("mosquitto", [binary, "-c", str(conf)], port, workdir)
    server.start()
    return server


INFLUXD_CONF = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
{data_extra}[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  auth-enabled = {auth}
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""


def start_influxd(workdir: Path | None = None, *, auth: bool = False, unlimited_tags: bool = False) -> Server:
    """An influxd on a free port; ``auth`` turns on ``[http] auth-enabled`` (create an admin user first);
    ``unlimited_tags`` lifts the 100,000 values per tag that influxd 1.x allows by default (the 10x province
    has about 200,000 meters: the ``device`` tag needs more, see docs/contract.md)."""
    binary = _binary("influxd", "/usr/bin/influxd")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="mw-influxd-"))
    workdir.mkdir(parents=True, exist_ok=True)
    port, rpc = free_port(), free_port()
    conf = workdir / "influxdb.conf"
    data_extra = "  max-values-per-tag = 0\n" if unlimited_tags else ""
    conf.write_text(INFLUXD_CONF.format(rpc=rpc, dir=workdir, port=port, auth=str(auth).lower(), data_extra=data_extra))
    server = Server("influxd", [binary, "-config", str(conf)], port, workdir)
    server.start()
    return server


@dataclass
class Robot:
    """A local HTTP server standing in for robots, webhooks and SMS gateways.

    What the server got, what it answers (one per request, then 200 ``{"errcode": 0}``), how slowly."""

    base: str
    got: list[dict] = field(default_factory=list)
    answers: list[tuple[int, dict]] = field(default_factory=list)
    delay_s: float = 0.0


@asynccontextmanager
async def robot_server(delay_s: float = 0.0) -> AsyncIterator[Robot]:
    port = free_port()
    robot = Robot(f"http://127.0.0.1:{port}", delay_s=delay_s)

    async def handle(request: web.Request) -> web.Response:
        body = await request.json()
        if robot.delay_s:
            await asyncio.sleep(robot.delay_s)  # a slow endpoint, not test synchronisation
        status, answer = robot.answers.pop(0) if robot.answers else (200, {"errcode": 0, "errmsg": "ok"})
        robot.got.append({"path": request.path, "query": dict(request.query), "body": body, "status": status})
        return web.json_response(answer, status=status)

    app = web.Application()
    app.router.add_post("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield robot
    finally:
        await runner.cleanup()


async def each_store(prefix: str, database: str, *, influx_port: int | None = None,
                     stores: tuple[str, ...] = ("duckdb", "influxdb")) -> AsyncIterator[tuple[str, Store]]:
    """The benchmarks' loop over both backends: (name, an opened store) in turn, each closed after its turn;
    a temporary DuckDB file and, unless ``influx_port`` names a running one, an influxd of our own."""
    server = start_influxd() if influx_port is None and "influxdb" in stores else None
    port = server.port if server else influx_port
    tmp = Path(tempfile.mkdtemp(prefix=f"meterwatch-{prefix}-"))
    try:
        for name in stores:
            url = (f"duckdb://{tmp / f'{prefix}.duckdb'}" if name == "duckdb"
                   else f"influxdb://127.0.0.1:{port}/{database}")
            store = open_store(url, timeout_s=600)
            await store.open()
            try:
                yield name, store
            finally:
                await store.close()
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
