"""The collector process: MQTT session, batching, durable writes, then acknowledgements.

Flow: messages are decoded as they arrive into a pending batch; the batch
is handed to a single writer (so writes stay in order) when it is full or
old enough; the writer writes it with retry and only then acknowledges its
messages.  A message that is not acknowledged is redelivered by the broker
(persistent session), so a crash loses nothing that was acknowledged.
Rejects are written like data and then acknowledged, so bad input can
never fill the broker's in-flight window.  "Written" means durable: in the
store, or, while the store is down or slow, in the disk spool that is
replayed in order when it returns (``meterwatch.store.durable``).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import aiomqtt

from collector import reasons
from collector.deltas import interval
from collector.ingest import Ingestor
from collector.metrics import CollectorMetrics
from collector.topics import subscriptions
from meterwatch.const import STATUS_TOPIC
from meterwatch.localtime import DAY
from meterwatch.mqtt import Ack, ack_for, client_kwargs, enable_manual_ack
from meterwatch.registry import Registry
from meterwatch.settings import Settings
from meterwatch.store import Batch, PermanentStoreError, ReadingPoint, RejectRecord, Store, TransientStoreError
from meterwatch.store.codec import encode_batch
from meterwatch.store.durable import DurableWriter, Written
from meterwatch.store.spool import DiskSpool, Quarantine

log = logging.getLogger(__name__)
BASELINE_DAYS = 60
SHUTDOWN_SLACK_S = 5.0  # beyond shutdown_grace_s, stopping gives up waiting on anything


class CollectorDied(RuntimeError):
    """A component died or shutdown overran: the process must exit non-zero so a supervisor restarts it."""


@dataclass
class Pending:
    batch: Batch = field(default_factory=Batch)
    acks: list[Ack] = field(default_factory=list)
    raw: list[tuple[str, bytes]] = field(default_factory=list)  # to dead-letter if the store refuses
    late: list[ReadingPoint] = field(default_factory=list)  # readings older than the in-memory window
    opened: float = field(default_factory=time.monotonic)


class Collector:
    def __init__(self, settings: Settings, registry: Registry, store: Store,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.cfg = settings.collector
        self.store = store
        self.clock = clock
        self.ingestor = Ingestor(registry, self.cfg, clock)
        self.metrics = CollectorMetrics(self.cfg.instance)
        self.spool = DiskSpool(self.cfg.spool_dir / self.cfg.instance, self.cfg.spool_max_bytes)
        self.quarantine = Quarantine(self.cfg.spool_dir / f"{self.cfg.instance}-quarantine")
        self.writer = DurableWriter(store, self.spool, self.quarantine, dead_letters=self._dead_letters,
                                    max_probe_interval_s=self.cfg.write_retry_max_s)
        self._pending = Pending()
        self._queue: asyncio.Queue[Pending | None] = asyncio.Queue(maxsize=2)
        self._flush_lock = asyncio.Lock()  # batches are decoded and queued in arrival order
        self.connected = asyncio.Event()
        self._writer_task: asyncio.Task | None = None

    # -- message handling (pure work, no awaits) ------------------------------------------------

    def handle(self, topic: str, payload: bytes, ack: Ack) -> None:
        """Arrival: only bookkeeping; decoding happens per batch in ``flush``."""
        self.metrics.received += 1
        self.metrics.last_message_at = time.time()
        self._pending.acks.append(self._counted(ack))
        self._pending.raw.append((topic, payload))

    def _counted(self, ack: Ack) -> Ack:
        def acknowledge() -> None:
            ack()
            self.metrics.acknowledged += 1
        return acknowledge

    def _ingest(self, p: Pending, topic: str, payload: bytes) -> None:
        outcome = self.ingestor.process(topic, payload)  # total: never raises, never returns nothing
        m = self.metrics
        m.messages_by_outcome[outcome.verdict] += 1
        m.duplicates += outcome.duplicates
        m.register_flags.update(outcome.flags)
        m.unknown_cards += outcome.unknown_cards
        p.late += outcome.late
        p.batch.readings += outcome.readings
        p.batch.weighings += outcome.weighings
        p.batch.values += outcome.values
        p.batch.rejects += outcome.rejects

    def _take(self) -> Pending | None:
        if not self._pending.acks:
            return None
        taken, self._pending = self._pending, Pending()
        return taken

    async def _refresh_baselines(self, raw: list[tuple[str, bytes]]) -> None:
        devices = sorted({parts[3] for topic, _ in raw if len(parts := topic.split("/")) > 4})
        try:
            self.ingestor.refresh(await self.store.latest_readings(int(self.clock()) - BASELINE_DAYS * DAY,
                                                                   devices))
        except TransientStoreError:
            pass  # the store is down: our own history and the spool are the best baseline there is
        except Exception as exc:  # noqa: BLE001  (a failed refresh must not stop ingestion: same fallback)
            self.ingestor.log_summary.error("baseline refresh from the store failed; continuing from this "
                                            "process's history", exc, f"{len(devices)} devices")

    async def flush(self) -> None:
        """Decode the pending messages and hand the batch to the writer (waits when it is behind)."""
        async with self._flush_lock:
            taken = self._take()
            if taken is None:
                return
            if self.cfg.shared_group:
                await self._refresh_baselines(taken.raw)
            for topic, payload in taken.raw:
                self._ingest(taken, topic, payload)
            for late in taken.late:
                taken.batch.readings += await self._placed(late)
            await self._queue.put(taken)

    async def _placed(self, late: ReadingPoint) -> list[ReadingPoint]:
        try:
            return await self._place_late(late)
        except Exception as exc:  # noqa: BLE001  (one reading must not stop ingestion)
            self.ingestor.log_summary.error("late readings kept without consumption: placing them failed",
                                            exc, late.device)
            return [late]

    async def _place_late(self, late: ReadingPoint) -> list[ReadingPoint]:
        """A reading older than what this process holds: consumption from its stored neighbours.

        It gets its interval from the stored reading before it, and the stored
        reading after it gets the rest of what used to be one interval.
        """
        try:
            before, after = await self.store.neighbours(late.device, late.ts)
        except TransientStoreError:
            return [late]  # store down: kept without consumption rather than guessed
        if before is not None and before[0] == late.ts:  # already stored: a retry older than our window
            if abs(before[1] - late.register) <= 1e-9 * max(1.0, abs(late.register)):
                self.metrics.duplicates += 1
                return []
            self.ingestor.log_summary.note("late readings differing from the stored one; last write wins",
                                           late.device, f"{late.device} at {late.ts}: {before[1]} -> {late.register}")
            before, _ = await self.store.neighbours(late.device, late.ts - 1)
        multiplier = self.ingestor.registry.devices[late.device].multiplier
        points = [late]
        if before is not None:
            p = interval(before[0], before[1], late.ts, late.register, multiplier)
            points = [replace(late, consumption=p.consumption, interval_s=p.interval_s, flag=p.flag)]
        if after is not None:
            n = interval(late.ts, late.register, after[0], after[1], multiplier)
            points.append(replace(late, ts=after[0], register=after[1], consumption=n.consumption,
                                  interval_s=n.interval_s, flag=n.flag))
        return points

    # -- writing --------------------------------------------------------------------------------

    def _dead_letters(self, refused: Batch, error: str) -> list[RejectRecord]:
        """Records the store refused one by one, kept as ``store_refused`` rejects: the record as payload."""
        return [RejectRecord(self.ingestor.next_reject_ns(), reasons.STORE_REFUSED, "",
                             encode_batch(Batch(**{name: [record]})),
                             f"{type(record).schema.measurement} refused by the store: {error}"[:500],
                             getattr(record, "institution", ""), getattr(record, "device", ""))
                for name, rows in vars(refused).items() for record in rows]

    def _bounded(self, rejects: list[RejectRecord]) -> list[RejectRecord]:
        """Rejects keep at most ``reject_payload_max_bytes`` of a payload; the detail says how much there was."""
        limit = self.cfg.reject_payload_max_bytes
        return [r if len(r.payload) <= limit else
                replace(r, payload=r.payload[:limit],
                        detail=f"{r.detail} (payload {len(r.payload)} bytes, first {limit} kept)")
                for r in rejects]

    async def _write(self, pending: Pending, give_up: asyncio.Event | None) -> None:
        batch = pending.batch
        batch.rejects = self._bounded(batch.rejects)
        started = time.monotonic()
        written = await self.writer.write(batch, give_up)
        self._count(batch, written)
        self.metrics.write_ms = (time.monotonic() - started) * 1000
        for ack in pending.acks:
            ack()

    def _count(self, batch: Batch, written: Written) -> None:
        m = self.metrics
        kept = len(batch.readings) + len(batch.weighings) - len(written.refused.readings) - len(written.refused.weighings)
        if written.where == "spool":
            m.spooled += kept
        m.stored += kept
        m.quarantined += written.quarantined
        rejects = batch.rejects + written.dead_letters
        m.rejected += len(rejects)
        for r in rejects:
            m.rejected_by_reason[r.reason] += 1
        if batch.readings:
            m.lag = max(0.0, self.clock() - max(r.ts for r in batch.readings))

    async def _writer(self, give_up: asyncio.Event) -> None:
        while (pending := await self._queue.get()) is not None:
            try:
                await self._write(pending, give_up)
            except TransientStoreError:
                log.error("shutting down with the spool full: messages stay unacknowledged "
                          "and the broker will redeliver them", extra={"messages": len(pending.acks)})
            finally:
                self._queue.task_done()
        self._queue.task_done()

    async def _left_unwritten(self) -> None:
        """After the writer died: take what is queued without acknowledging it, so nobody waits on the queue.

        The broker redelivers these messages to the next process.
        """
        while True:
            pending = await self._queue.get()
            if pending is not None:
                log.error("writer is dead: batch left unacknowledged for redelivery",
                          extra={"messages": len(pending.acks)})
            self._queue.task_done()

    async def _queue_written(self, writer: asyncio.Task | None) -> None:
        """Wait until every queued batch is written, or the writer is gone (then nothing will be)."""
        join = asyncio.ensure_future(self._queue.join())
        waits = {join} | ({writer} if writer is not None else set())
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            join.cancel()

    # -- periodic work --------------------------------------------------------------------------

    async def _ticker(self) -> None:
        next_metrics = time.monotonic() + self.cfg.metrics_interval_s
        while True:
            await asyncio.sleep(min(self.cfg.batch_interval_s, 0.25))
            if time.monotonic() - self._pending.opened >= self.cfg.batch_interval_s:
                await self.flush()
            if time.monotonic() >= next_metrics:
                next_metrics = time.monotonic() + self.cfg.metrics_interval_s
                await self._write_metrics()

    async def _write_metrics(self) -> None:
        self.metrics.spool_bytes = self.spool.bytes
        idle = self.metrics.idle_s(time.time())
        if self.metrics.connected and idle > self.cfg.silence_warn_s:
            log.warning("connected but no message for an unusual time: are the gateways or the broker's "
                        "routing broken?", extra={"idle_s": round(idle), "threshold_s": self.cfg.silence_warn_s})
        log.info("collector status", extra=self.metrics.summary())
        self.ingestor.log_summary.emit()  # rejects, unknown cards, anomalies: counted per interval, not per message
        if not self.writer.healthy:
            return  # the spool is draining: self-metrics wait for the next tick rather than jump the queue
        try:
            await self.store.write(Batch(metrics=[self.metrics.sample(time.time())]))
        except (TransientStoreError, PermanentStoreError) as exc:
            log.warning("could not write self-metrics", extra={"error": str(exc)[:200]})

    # -- MQTT -----------------------------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        status = STATUS_TOPIC.format(component=self.cfg.instance)
        client = aiomqtt.Client(**client_kwargs(
            self.settings, identifier=self.cfg.client_id, clean_session=False,
            will=aiomqtt.Will(status, b"offline", qos=1, retain=True)))
        enable_manual_ack(client)
        return client

    async def _consume(self) -> None:
        client = self._client()
        async with client:
            for topic in subscriptions(self.cfg.shared_group):
                await client.subscribe(topic, qos=1)
            status = STATUS_TOPIC.format(component=self.cfg.instance)
            await client.publish(status, b"online", qos=1, retain=True)
            log.info("connected and subscribed", extra={"broker": client_kwargs(self.settings)["hostname"],
                                                         "client_id": self.cfg.client_id})
            self.connected.set()
            self.metrics.connected = True
            try:
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                    self.handle(message.topic.value, payload, ack_for(client, message))
                    if len(self._pending.acks) >= self.cfg.batch_size:
                        await self.flush()
            finally:
                self.connected.clear()
                self.metrics.connected = False
                if not client._disconnected.done():  # noqa: SLF001  (clean stop: say so before leaving)
                    await self.flush()
                    await self._queue_written(self._writer_task)
                    await client.publish(status, b"offline", qos=1, retain=True)

    async def _connection_loop(self) -> None:
        delay = 1.0
        while True:
            try:
                await self._consume()
            except aiomqtt.MqttError as exc:
                log.warning("broker connection lost; reconnecting", extra={"error": str(exc), "retry_in_s": round(delay, 1)})
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 30.0)
            else:
                delay = 1.0

    async def _baseline(self) -> dict[str, tuple[int, float]]:
        """Each device's newest reading, from the store and the spool: where consumption continues from."""
        latest: dict[str, tuple[int, float]] = {}
        try:
            await self.store.open()
            latest = await self.store.latest_readings(int(self.clock()) - BASELINE_DAYS * DAY)
        except TransientStoreError as exc:
            log.error("store unavailable at start: spooling, and the first reading of each device after "
                      "this start gets no consumption", extra={"error": str(exc)[:200]})
        for device, (ts, register) in self.spool.latest_readings().items():
            if device not in latest or ts > latest[device][0]:
                latest[device] = (ts, register)
        return latest

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then flush everything buffered and acknowledge it.

        Returns within ``shutdown_grace_s`` + a few seconds of ``stop`` or of a
        component's death, whatever state the writer is in; raises
        ``CollectorDied`` if a component died or stopping overran.
        """
        if len(self.spool):
            log.warning("spool holds batches from before this start; replaying",
                        extra={"batches": len(self.spool), "spool_bytes": self.spool.bytes})
        self.ingestor.seed(await self._baseline())
        give_up = asyncio.Event()
        replay = asyncio.create_task(self.writer.replay_forever(), name="replay")
        writer = self._writer_task = asyncio.create_task(self._writer(give_up), name="writer")
        drain: list[asyncio.Task] = []  # once the writer is gone, for whatever reason, nothing may wait on the queue
        writer.add_done_callback(lambda _: drain.append(asyncio.create_task(self._left_unwritten(), name="drain")))
        ticker = asyncio.create_task(self._ticker(), name="ticker")
        consumer = asyncio.create_task(self._connection_loop(), name="consumer")
        stopped = asyncio.create_task(stop.wait(), name="stop")
        # A component that dies must not leave a process that looks alive and does nothing.
        done, _ = await asyncio.wait({stopped, replay, writer, ticker, consumer}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        crashed = next((t for t in done if t is not stopped), None)
        if crashed is not None:
            log.critical("collector component died; shutting down so that a supervisor restarts us",
                         extra={"component": crashed.get_name()},
                         exc_info=None if crashed.cancelled() else crashed.exception())
        overran = False
        try:
            async with asyncio.timeout(self.cfg.shutdown_grace_s + SHUTDOWN_SLACK_S):
                await self._shut_down(give_up, writer, ticker, consumer)
        except TimeoutError:
            overran = True
            log.critical("stopping overran its grace: exiting with the unwritten messages unacknowledged "
                         "(the broker redelivers them)", extra={"grace_s": self.cfg.shutdown_grace_s})
        finally:
            tasks = [replay, writer, ticker, consumer, *drain]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        log.info("collector stopped", extra=self.metrics.summary())
        if crashed is not None:
            raise CollectorDied(f"collector component {crashed.get_name()!r} died") from (
                None if crashed.cancelled() else crashed.exception())
        if overran:
            raise CollectorDied("collector could not stop within its grace")

    async def _shut_down(self, give_up: asyncio.Event, writer: asyncio.Task, ticker: asyncio.Task,
                         consumer: asyncio.Task) -> None:
        """Flush and acknowledge what is buffered while still connected, then stop the writer."""
        asyncio.get_running_loop().call_later(self.cfg.shutdown_grace_s, give_up.set)
        ticker.cancel()
        consumer.cancel()  # its finally-block flushes and acks while still connected
        await asyncio.gather(consumer, ticker, return_exceptions=True)
        await self.flush()
        give_up.set()
        if not writer.done():
            await self._queue.put(None)
            await asyncio.wait({writer})
        try:
            await self._write_metrics()
        except Exception:
            log.exception("could not write the last self-metrics")
