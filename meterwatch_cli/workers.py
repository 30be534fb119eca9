"""``meterwatch collect --workers N``: N collector processes, one partition each, kept up by one supervisor.

Each worker is ``meterwatch collect --partition i/N`` with the same settings:
it handles the devices whose id hashes to ``i`` (``collector.topics.Partition``)
on its own MQTT session, spool and status topic, so a device's consumption is
computed by one process from its whole history.  The supervisor

- first makes sure every worker's MQTT session exists (connects once with
  each worker's client id and subscribes), so that from then on the broker
  queues every message for every partition: a worker up before another
  acknowledges the other's messages unhandled, and the other must find
  them in its session when it comes up;
- forwards SIGTERM and SIGINT (both stop a worker, which flushes and
  acknowledges what it holds) and SIGHUP (reload the registry) to every
  worker.  Workers run in their own session, so a Ctrl-C at a terminal
  reaches them through the supervisor only, and the kernel stops them if
  the supervisor dies (``PR_SET_PDEATHSIG``);
- restarts a worker that exits, after a backoff (1 s, doubling up to 30 s;
  back to 1 s once a worker stayed up ``STABLE_S``), each restart logged; a
  worker that dies ``MAX_FAILURES`` times in a row without staying up stops
  everything: exit 1, for the service manager to see;
- gives one status for the whole: a ``collector workers`` log line every
  ``collector.metrics_interval_s``, and with ``collector.http_listen`` the
  one ``/healthz`` (200 only while every worker runs and its own
  ``/healthz`` says 200, else 503 naming the worker) and ``/metrics`` (the
  workers' counters summed, plus workers up and restarts).  Each worker
  serves its own on a loopback port the supervisor chose.

Exit: 0 when every worker stopped cleanly after a signal, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import re
import signal
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import aiomqtt
from aiohttp import web
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from collector.topics import SUBSCRIPTIONS, Partition
from meterwatch.aio import wait_set
from meterwatch.httpservice import HttpService, read_prefix
from meterwatch.mqtt import client_kwargs, enable_manual_ack
from meterwatch.settings import Settings
from meterwatch.store.spool import DiskSpool

log = logging.getLogger("meterwatch.workers")

BACKOFF_S, BACKOFF_MAX_S = 1.0, 30.0
STABLE_S = 60.0  # a worker up this long has recovered: its next death starts the backoff afresh
MAX_FAILURES = 5  # deaths in a row, each before STABLE_S: the supervisor gives up
POLL_S = 1.0  # how often the workers' /healthz and /metrics are read (with http_listen)
STOP_SLACK_S = 10.0  # beyond shutdown_grace_s, a worker still running is killed
# The workers' gauges that do not add up: the whole is as late as its latest worker, as idle as its busiest,
# and connected only if every worker is.
COMBINE = {"meterwatch_collector_lag_seconds": max, "meterwatch_collector_idle_seconds": min,
           "meterwatch_collector_connected": min}


def default_workers(settings: Settings) -> int:
    """The machine's cores for InfluxDB; 1 for DuckDB, whose file only one process can hold."""
    return 1 if settings.store.startswith("duckdb:") else os.cpu_count() or 1


def stranded_spools(settings: Settings, workers: int | None) -> list[tuple[Path, int]]:
    """Spools that hold batches nobody would replay with this many workers (None: one process, no partition).

    A spooled batch was acknowledged to the broker: only the process whose
    spool it is writes it to the store, so a layout that leaves a spool
    behind (one process to N workers, or fewer workers than before) would lose
    it.  Returns (directory, batches) for each."""
    cfg = settings.collector
    own = {cfg.instance} if workers is None else {f"{cfg.instance}-p{i}" for i in range(workers)}
    pattern = re.compile(rf"{re.escape(cfg.instance)}(-p\d+)?")
    stranded = []
    if cfg.spool_dir.is_dir():
        for directory in sorted(cfg.spool_dir.iterdir()):
            if directory.is_dir() and pattern.fullmatch(directory.name) and directory.name not in own:
                if batches := len(DiskSpool(directory, cfg.spool_max_bytes)):
                    stranded.append((directory, batches))
    return stranded


def _loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the supervisor dies (Linux), so no worker outlives it and
    competes with its replacement for the same MQTT session."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Worker:
    index: int
    count: int
    http_port: int | None = None
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    failures: int = 0  # deaths in a row, each before STABLE_S
    healthy: tuple[bool, str] = (False, "starting")
    metrics: list[Metric] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


class Supervisor:
    def __init__(self, settings: Settings, count: int, config: Path | None = None) -> None:
        self.settings = settings
        http = settings.collector.http_listen is not None
        self.workers = [Worker(i, count, _loopback_port() if http else None) for i in range(count)]
        self.config = config
        self.gave_up = False
        self._forwarder: aiohttp.ClientSession | None = None  # the pushes passed on to worker 0

    def argv(self, worker: Worker) -> list[str]:
        config = ["--config", str(self.config)] if self.config else []
        return [sys.executable, "-m", "meterwatch_cli.main", *config, "collect", "--partition", worker.name]

    async def _spawn(self, worker: Worker) -> None:
        env = dict(os.environ)
        if worker.http_port is not None:
            env["METERWATCH_COLLECTOR__HTTP_LISTEN"] = f"127.0.0.1:{worker.http_port}"
        worker.healthy = (False, "starting")
        worker.proc = await asyncio.create_subprocess_exec(*self.argv(worker), env=env, start_new_session=True,
                                                           preexec_fn=_die_with_parent)
        log.info("collector worker started", extra={"partition": worker.name, "pid": worker.proc.pid})

    async def _keep_up(self, worker: Worker, stop: asyncio.Event) -> None:
        """Run the worker until ``stop``; restart it with backoff when it exits; give up after MAX_FAILURES."""
        while not stop.is_set():
            started = time.monotonic()
            try:
                await self._spawn(worker)
                assert worker.proc is not None
                code = await worker.proc.wait()
            except OSError as exc:  # the interpreter cannot be started (fd or process limits): a death too
                log.error("collector worker could not be started", extra={"partition": worker.name, "error": str(exc)})
                code = None
            if stop.is_set():
                return
            worker.failures = 1 if time.monotonic() - started >= STABLE_S else worker.failures + 1
            if worker.failures > MAX_FAILURES:
                log.critical("collector worker keeps dying: stopping all workers", extra={
                    "partition": worker.name, "exit_code": code, "deaths_in_a_row": worker.failures})
                self.gave_up = True
                stop.set()
                return
            delay = min(BACKOFF_S * 2 ** (worker.failures - 1), BACKOFF_MAX_S)
            log.warning("collector worker exited; restarting", extra={
                "partition": worker.name, "exit_code": code, "retry_in_s": delay, "restarts": worker.restarts + 1})
            if await wait_set(stop, delay):
                return
            worker.restarts += 1

    async def _prepare_sessions(self) -> None:
        try:
            async with asyncio.timeout(30):
                for worker in self.workers:
                    client_id = Partition(worker.index, worker.count).own(self.settings.collector).client_id
                    client = aiomqtt.Client(**client_kwargs(self.settings, identifier=client_id,
                                                            clean_session=False))
                    enable_manual_ack(client)  # what the session holds is the worker's: redelivered to it
                    async with client:
                        for topic in SUBSCRIPTIONS:
                            await client.subscribe(topic, qos=1)
        except (aiomqtt.MqttError, TimeoutError, OSError, ValueError) as exc:
            log.warning("could not prepare the workers' sessions: each worker makes its own when it connects, and "
                        "until all have, a message published may miss its partition", extra={"error": str(exc)[:200]})
        else:
            log.info("collector workers' sessions ready", extra={"workers": len(self.workers)})

    def _keeper_done(self, task: asyncio.Task, stop: asyncio.Event) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.critical("collector worker's keeper failed: stopping all workers", extra={"task": task.get_name()},
                         exc_info=task.exception())
            self.gave_up = True
            stop.set()

    def signal_all(self, sig: signal.Signals) -> None:
        for worker in self.workers:
            if worker.running:
                assert worker.proc is not None
                worker.proc.send_signal(sig)

    async def run(self, stop: asyncio.Event) -> int:
        """Keep the workers up until ``stop``; then stop them all. Returns the exit code."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, self.signal_all, signal.SIGHUP)
        await self._prepare_sessions()
        keepers = [asyncio.create_task(self._keep_up(w, stop), name=f"worker {w.name}") for w in self.workers]
        for keeper in keepers:  # a keeper that fails (a bug of ours) must not leave its partition unserved quietly
            keeper.add_done_callback(lambda task: self._keeper_done(task, stop))
        http = await self._serve()
        reporter = asyncio.create_task(self._report(), name="report")
        try:
            await stop.wait()
            log.info("stopping collector workers", extra={"workers": len(self.workers)})
            self.signal_all(signal.SIGTERM)
            grace = self.settings.collector.shutdown_grace_s + STOP_SLACK_S
            _, late = await asyncio.wait(keepers, timeout=grace)
            if late:
                log.critical("collector workers did not stop within their grace: killed", extra={
                    "partitions": [w.name for w in self.workers if w.running]})
                self.signal_all(signal.SIGKILL)
                await asyncio.wait(keepers)
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            reporter.cancel()
            await asyncio.gather(reporter, return_exceptions=True)
            if http is not None:
                await http.stop()
            if self._forwarder is not None:
                await self._forwarder.close()
        codes = {w.name: w.proc.returncode if w.proc else None for w in self.workers}
        log.info("collector workers stopped", extra={"exit_codes": codes, "gave_up": self.gave_up})
        # A worker the stop signal reached before it had installed its handler (still starting: nothing
        # consumed, nothing acknowledged) ends with -SIGTERM; its session keeps its messages.
        clean = {0, -signal.SIGTERM, -signal.SIGINT}
        return 1 if self.gave_up or any(code not in clean for code in codes.values()) else 0

    # -- one status for the whole ---------------------------------------------------------------------

    def health(self) -> tuple[bool, str]:
        for worker in self.workers:
            if not worker.running:
                return False, f"worker {worker.name} is not running (restarts: {worker.restarts})"
            if self.workers[0].http_port is not None and not worker.healthy[0]:
                return False, f"worker {worker.name}: {worker.healthy[1]}"
        return True, ""

    def summary(self) -> dict[str, object]:
        return {"workers": len(self.workers), "running": sum(w.running for w in self.workers),
                "restarts": {w.name: w.restarts for w in self.workers if w.restarts},
                "pids": {w.name: w.proc.pid for w in self.workers if w.running and w.proc}}

    async def _report(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            next_log = time.monotonic() + self.settings.collector.metrics_interval_s
            while True:
                if self.workers[0].http_port is not None:
                    await asyncio.gather(*(self._poll(http, w) for w in self.workers))
                if time.monotonic() >= next_log:
                    next_log = time.monotonic() + self.settings.collector.metrics_interval_s
                    log.info("collector workers", extra=self.summary())
                await asyncio.sleep(POLL_S)

    async def _poll(self, http: aiohttp.ClientSession, worker: Worker) -> None:
        base = f"http://127.0.0.1:{worker.http_port}"
        try:
            async with http.get(base + "/healthz") as answer:
                worker.healthy = (answer.status == 200, (await answer.text()).strip())
            async with http.get(base + "/metrics") as answer:
                worker.metrics = list(text_string_to_metric_families(await answer.text()))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            worker.healthy = (False, f"no answer on its port {worker.http_port}: {type(exc).__name__}")

    async def _serve(self) -> HttpService | None:
        if self.settings.collector.http_listen is None:
            return None
        registry = CollectorRegistry()
        registry.register(_Whole(self))  # type: ignore[arg-type]
        service = HttpService(self.settings.collector.http_listen, registry, self.health)
        cfg = self.settings.collector
        if cfg.onenet_token is not None:
            service.route("GET", "/push/onenet", self._to_first_worker)
            service.route("POST", "/push/onenet", self._to_first_worker)
        if cfg.ctwing_token is not None:
            service.route("POST", "/push/ctwing", self._to_first_worker)
        await service.start()
        return service

    async def _to_first_worker(self, request: web.Request) -> web.Response:
        """The platforms' HTTP push, passed to worker 0, which alone serves it: each pushing device is then
        handled by one worker, as each MQTT device is (a device reports by MQTT or by push, not both).
        The body is read up to one byte over ``push_max_bytes``, enough for the worker to refuse it."""
        cfg = self.settings.collector
        worker = self.workers[0]
        if not worker.running or worker.http_port is None:
            return web.json_response({"error": "unavailable", "detail": f"worker {worker.name} is not running"},
                                     status=503)
        body = await read_prefix(request, cfg.push_max_bytes + 1)  # over the limit: the worker refuses it
        if self._forwarder is None:
            self._forwarder = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(
                total=cfg.push_timeout_s + STOP_SLACK_S))
        try:
            async with self._forwarder.request(
                    request.method, f"http://127.0.0.1:{worker.http_port}{request.path_qs}", data=body,
                    headers={"Content-Type": request.headers.get("Content-Type", "application/json")}) as answer:
                return web.Response(status=answer.status, body=await answer.read(),
                                    content_type=answer.content_type)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return web.json_response({"error": "unavailable", "detail": f"worker {worker.name}: "
                                      f"{type(exc).__name__}"}, status=503)


class _Whole:
    """The workers' metrics as one collector's: counters summed, gauges combined (COMBINE, else summed)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[Metric]:
        workers = self.supervisor.workers
        yield GaugeMetricFamily("meterwatch_collector_workers", "collector workers configured", value=len(workers))
        yield GaugeMetricFamily("meterwatch_collector_workers_running", "collector workers running",
                                value=sum(w.running for w in workers))
        yield CounterMetricFamily("meterwatch_collector_worker_restarts", "collector workers restarted",
                                  value=sum(w.restarts for w in workers))
        yield from combine([w.metrics for w in workers if w.running])


def combine(per_worker: Sequence[list[Metric]]) -> Iterator[Metric]:
    """Families of the same name from each worker as one family: each sample (name and labels) combined."""
    families: dict[str, Metric] = {}
    values: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[float]] = {}
    for metrics in per_worker:
        for family in metrics:
            families.setdefault(family.name, family)
            for sample in family.samples:
                values.setdefault((family.name, sample.name, tuple(sorted(sample.labels.items()))),
                                  []).append(sample.value)
    for name, family in families.items():
        out = Metric(name, family.documentation, family.type)
        how = COMBINE.get(name, sum)
        for (fam, sample, labels), numbers in values.items():
            if fam == name:
                out.add_sample(sample, dict(labels), how(numbers))
        yield out
