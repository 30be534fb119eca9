"""The collector process: one record per MQTT message, through named stages, acknowledged when durable.

With ``collector.partition`` (``i/N``, one worker of ``collect --workers N``),
a message of another partition's device is acknowledged on arrival and goes
no further (``Partition.owns``: its owner holds it in its own session).
Every other message becomes a ``Message`` (``collector.message``) on arrival and
waits, with its ack, until the pending list is full (``batch_size``) or old
enough (``batch_interval_s``).  ``flush`` then runs the stages on the list:

1. ``route`` (``collector.ingest``): size, topic parsed once, decoder,
   registry checks (device, institution, kind);
2. ``decode``: the decoder, each item checked on its own;
3. ``derive``: consumption, flags, duplicates, conflicts, from each device's
   history (only this process handles the device, so its history is the
   device's); ``place_late`` (``collector.late``): readings older than it,
   between their stored neighbours;
4. ``batch`` (``collector.message``): every message's points and rejects as
   one store ``Batch``, and the messages' outcomes counted in the metrics.

The batch goes to a single writer, which makes it durable (5. ``write``,
``meterwatch.store.durable``: in the store, or while the store is down or
slow in the disk spool replayed in order when it returns) and only then
acknowledges its messages (6. ``acknowledge``).  ``BATCHES_IN_FLIGHT``
batches at most are in flight: a batch's new readings (points newer than
anything of their device, which nothing in flight can rewrite) are written
while the batches before it are; its other records (rewrites among them)
and its acknowledgements follow the batch before it, so rewrites land after
the points they rewrite and PUBACKs keep the order of arrival.  In a burst
(a full list flushed less than ``batch_interval_s`` ago), what waits is
flushed whenever the writer is free, so the end of a burst is not held back
``batch_interval_s``.  A message that is not acknowledged is redelivered by
the broker (persistent session), so a crash loses nothing that was
acknowledged.  Rejects are written like data and then acknowledged, so bad
input can never fill the broker's in-flight window.  The collector reads
time only from its ``clock`` and ``monotonic`` arguments.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import aiomqtt

from collector import reasons
from collector.ingest import Ingestor
from collector.late import place_late
from collector.message import Message, batch
from collector.metrics import CollectorMetrics
from collector.topics import SUBSCRIPTIONS, Partition
from meterwatch.aio import wait_set
from meterwatch.const import STATUS_TOPIC
from meterwatch.localtime import DAY
from meterwatch.mqtt import Ack, Receiver, client_kwargs
from meterwatch.registry import Registry, RegistryError, load_registry
from meterwatch.settings import Settings
from meterwatch.store import Batch, PermanentStoreError, RejectRecord, Store, TransientStoreError
from meterwatch.store.codec import encode_batch
from meterwatch.store.durable import DurableWriter, Written
from meterwatch.store.spool import DiskSpool, Quarantine

log = logging.getLogger(__name__)
BASELINE_DAYS = 60
SHUTDOWN_SLACK_S = 5.0  # beyond shutdown_grace_s, stopping gives up waiting on anything
GC_YOUNG_ALLOCATIONS = 100_000  # see _settle_heap
# Batches written at once.  With two, influxd had a single request to work on for a fifth of a burst's
# drain, each time a batch ended while the flush was still decoding the next; four keep it busy
# (BENCHMARKS.md, Ingest: a/d 0.70 -> 0.71-0.75).
BATCHES_IN_FLIGHT = 4


def _settle_heap() -> None:
    """Keep CPython's cyclic garbage collector out of the message path.

    What start-up built (registry, device histories) lives as long as the
    process and is set aside (``gc.freeze``).  The message path allocates a
    handful of container objects per message, and a batch's stay alive until
    acknowledged: with the default thresholds (700, 10, 10) the collector ran
    about 2,000 collections in 50,000 messages, a quarter of its CPU.  A
    young generation of 100,000 allocations makes that a dozen (measured with
    ``gc.callbacks`` during ``benchmarks.ingest``: 1.0 s of GC -> 0.13 s).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_ALLOCATIONS, 50, 100)


async def _finished(task: asyncio.Task) -> None:
    """Wait for ``task``; its error, if any, is raised here (a write that fails unexpectedly kills the writer)."""
    await asyncio.wait({task})
    task.result()


class CollectorDied(RuntimeError):
    """A component died or shutdown overran: the process must exit non-zero so a supervisor restarts it."""


Outgoing = tuple[Batch, list[Message]]  # one write, and the messages it acknowledges


class Collector:
    def __init__(self, settings: Settings, registry: Registry, store: Store,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.partition = Partition.parse(settings.collector.partition) if settings.collector.partition else None
        self.cfg = settings.collector if self.partition is None else self.partition.own(settings.collector)
        self.store = store
        self.clock = clock
        self.monotonic = monotonic
        self.ingestor = Ingestor(registry, self.cfg, clock, monotonic, columns=True)
        self.metrics = CollectorMetrics(self.cfg.instance, clock)
        self.spool = DiskSpool(self.cfg.spool_dir / self.cfg.instance, self.cfg.spool_max_bytes)
        self.quarantine = Quarantine(self.cfg.spool_dir / f"{self.cfg.instance}-quarantine")
        self.writer = DurableWriter(store, self.spool, self.quarantine, dead_letters=self._dead_letters,
                                    max_probe_interval_s=self.cfg.write_retry_max_s)
        self._pending: list[Message] = []
        self._pending_bytes = 0
        self._opened = monotonic()  # when the oldest pending message arrived (or the last flush)
        self._queue: asyncio.Queue[Outgoing | None] = asyncio.Queue(maxsize=2)
        self._flush_lock = asyncio.Lock()  # batches are decoded and queued in arrival order
        self._full_at = float("-inf")  # when the last full batch (``_batches``) was flushed: a burst
        self._writing = 0  # batches taken by the writer and not yet written
        self._drained = asyncio.Event()  # set when the writer has nothing left queued or in flight
        self.connected = asyncio.Event()
        self._full = asyncio.Event()  # the pending list is a full batch (set on arrival, cleared by a flush)
        self._writer_task: asyncio.Task | None = None

    def reload_registry(self) -> bool:
        """SIGHUP: adopt the registry files as they are now, if ``registry check`` would pass them.

        A registry with any problem is refused and the old one kept.  The swap
        happens between two flushes (one event loop), so a message is routed
        against one registry or the other, never lost.
        """
        try:
            registry, problems = load_registry(self.settings.registry, self.settings.cities)
        except (RegistryError, OSError) as exc:
            problems, detail = [exc], str(exc)
        else:
            detail = "; ".join(str(p) for p in problems[:5])
        if problems or not registry.devices:
            log.error("registry reload refused: keeping the registry in use", extra={
                "problems": len(problems), "detail": detail[:500] or "no device", "hint": "meterwatch registry check"})
            return False
        self.ingestor.registry = registry
        log.info("registry reloaded", extra={"devices": len(registry.devices),
                                             "institutions": len(registry.institutions)})
        return True

    # -- the stages ---------------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, ack: Ack) -> None:
        """MQTT arrival: only bookkeeping; the stages run per batch in ``flush``.

        Another partition's message is acknowledged at once: its owner's session holds it too."""
        now = self.metrics.last_message_at = self.clock()  # any message shows the broker's routing works
        if self.partition is not None and not self.partition.owns(topic):
            self.metrics.skipped_other_partition += 1
            ack()
            return
        self._arrive(topic, payload, ack, now)

    def _arrive(self, topic: str, payload: bytes, ack: Ack, now: float) -> Message:
        self.metrics.received += 1
        message = Message(topic, payload, ack, now)
        self._pending.append(message)
        self._pending_bytes += len(payload)
        return message

    def _is_full(self) -> bool:
        return len(self._pending) >= self.cfg.batch_size or self._pending_bytes >= self.cfg.batch_max_bytes

    async def submit(self, topic: str, payload: bytes, refused: tuple[str, str] | None = None
                     ) -> asyncio.Future[Message]:
        """A message from outside MQTT (``collector.push``), handled as one: same stages, same write.

        The future resolves with the message once it is durable (store or
        spool) and never if the collector stops first.  ``refused`` (reason,
        detail) keeps it as a reject of that reason without decoding it.
        Waits while the writer is behind, as the MQTT consumer does.  No
        partition filter: with ``--workers`` the pushes reach worker 0 only
        (``meterwatch_cli.workers``), so each pushing device has one worker.
        """
        durable: asyncio.Future[Message] = asyncio.get_running_loop().create_future()

        def ack() -> None:
            if not durable.done():
                durable.set_result(message)

        now = self.metrics.last_message_at = self.clock()
        message = self._arrive(topic, payload, ack, now)
        if refused is not None:
            self.ingestor.reject(message, *refused)
            message.settled = True
        if self._is_full():
            await self.flush()
        return durable

    def _take(self) -> list[Message]:
        taken, self._pending, self._pending_bytes = self._pending, [], 0
        self._full.clear()
        self._opened = self.monotonic()
        return taken

    async def flush(self) -> None:
        """Run the pending messages through the stages and hand them to the writer (waits when it is behind).

        In batches (``_batches``): a burst read at once is written as it would have been one by one.  The
        event loop is let go in each batch, between its decode and its derive, for the writes in flight."""
        async with self._flush_lock:
            for messages, full in self._batches(self._take()):
                if full:
                    self._full_at = self.monotonic()
                self.ingestor.route(messages)
                self.ingestor.decode(messages)
                await asyncio.sleep(0)  # a write answered meanwhile is followed by the next at once
                self.ingestor.derive(messages)
                await place_late(self.ingestor, self.store, messages)
                await self._queue.put((self._batch(messages), messages))

    def _batches(self, pending: list[Message]) -> Iterator[tuple[list[Message], bool]]:
        """``pending`` in arrival order, cut before ``batch_size`` messages or ``batch_max_bytes`` of payload
        (at least one message a batch); each with whether it was cut full."""
        start, size = 0, 0
        for end, m in enumerate(pending):
            if end > start and (end - start >= self.cfg.batch_size or size + len(m.payload) > self.cfg.batch_max_bytes):
                yield pending[start:end], True
                start, size = end, 0
            size += len(m.payload)
        if start < len(pending):
            yield pending[start:], len(pending) - start >= self.cfg.batch_size or size >= self.cfg.batch_max_bytes

    def _batch(self, messages: list[Message]) -> Batch:
        """The batch stage, and each message's outcome counted: the one place duplicates and flags are summed."""
        m = self.metrics
        for msg in messages:
            m.messages_by_outcome[msg.verdict] += 1
            m.duplicates += msg.duplicates
            if msg.flags:  # seldom: updating a Counter with nothing costs as much as a small message's decode
                m.register_flags.update(msg.flags)
            m.unknown_cards += msg.unknown_cards
        return batch(messages)

    def _acknowledge(self, messages: list[Message]) -> None:
        for msg in messages:
            msg.ack()
            self.metrics.acknowledged += 1

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

    async def _write(self, outgoing: Outgoing, give_up: asyncio.Event | None,
                     after: asyncio.Future | None = None) -> None:
        """The write stage, then the acknowledge stage: nothing is acknowledged before it is durable.

        ``after``: the previous batch's write, in flight; this batch is acknowledged after it."""
        batch, messages = outgoing
        batch.rejects = self._bounded(batch.rejects)
        started = self.monotonic()
        written = await self.writer.write(batch, give_up, after)
        if after is not None and (after.cancelled() or after.exception() is not None):
            raise RuntimeError("the previous batch's write failed: this one is left unacknowledged too "
                               "(acknowledgements keep the order of arrival; the broker redelivers both)")
        self._count(batch, written)
        self.metrics.write_ms = (self.monotonic() - started) * 1000
        self._acknowledge(messages)

    def _count(self, batch: Batch, written: Written) -> None:
        m = self.metrics
        kept = (batch.reading_count() + len(batch.weighings) - written.refused.reading_count()
                - len(written.refused.weighings))
        if written.where == "spool":
            m.spooled += kept
        m.stored += kept
        m.quarantined += written.quarantined
        rejects = batch.rejects + written.dead_letters
        m.rejected += len(rejects)
        for r in rejects:
            m.rejected_by_reason[r.reason] += 1
        if batch.readings or batch.reading_columns:
            newest = max([r.ts for r in batch.readings] + [int(c.ts[-1]) for c in batch.reading_columns])
            m.lag = max(0.0, self.clock() - newest)

    async def _writer(self, give_up: asyncio.Event) -> None:
        """``BATCHES_IN_FLIGHT`` batches at most: each one's new readings go to the store while the ones before
        are written (``DurableWriter.write``, ``after``: the one just before); its rows, and its
        acknowledgements, follow that one."""
        in_flight: list[asyncio.Task] = []
        try:
            while (outgoing := await self._next(in_flight[-1] if in_flight else None)) is not None:
                after = in_flight[-1] if in_flight else None
                self._writing += 1
                self._drained.clear()
                in_flight.append(asyncio.create_task(self._write_one(outgoing, give_up, after), name="write"))
                if len(in_flight) >= BATCHES_IN_FLIGHT:
                    await _finished(in_flight[0])
                    del in_flight[0]
            while in_flight:
                await _finished(in_flight[0])
                del in_flight[0]
            self._queue.task_done()
        finally:
            for task in in_flight:  # the writer is cancelled or died: so are the writes in flight
                task.cancel()

    async def _next(self, in_flight: asyncio.Task | None) -> Outgoing | None:
        """The next queued batch; while waiting, a write in flight that fails unexpectedly raises here at once."""
        get = asyncio.ensure_future(self._queue.get())
        try:
            while in_flight is not None and not get.done():
                await asyncio.wait({get, in_flight}, return_when=asyncio.FIRST_COMPLETED)
                if in_flight.done():
                    in_flight.result()
                    in_flight = None
            return await get
        finally:
            get.cancel()

    async def _write_one(self, outgoing: Outgoing, give_up: asyncio.Event, after: asyncio.Task | None) -> None:
        try:
            await self._write(outgoing, give_up, after)
        except TransientStoreError:
            log.error("shutting down with the spool full: messages stay unacknowledged "
                      "and the broker will redeliver them", extra={"messages": len(outgoing[1])})
        finally:
            self._writing -= 1
            if not self._writing and self._queue.empty():
                self._drained.set()
            self._queue.task_done()

    async def _left_unwritten(self) -> None:
        """After the writer died: take what is queued without acknowledging it, so nobody waits on the queue.

        The broker redelivers these messages to the next process.
        """
        while True:
            outgoing = await self._queue.get()
            if outgoing is not None:
                log.error("writer is dead: batch left unacknowledged for redelivery",
                          extra={"messages": len(outgoing[1])})
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
        """Flushes what waits ``batch_interval_s``, or at once in a burst when the writer is free (``_free_in_burst``)."""
        next_metrics = self.monotonic() + self.cfg.metrics_interval_s
        while True:
            await wait_set(self._drained, min(self.cfg.batch_interval_s, 0.25))  # early: the writer ran out of work
            self._drained.clear()
            if self._free_in_burst() or self.monotonic() - self._opened >= self.cfg.batch_interval_s:
                await self.flush()
            if self.monotonic() >= next_metrics:
                next_metrics = self.monotonic() + self.cfg.metrics_interval_s
                await self._write_metrics()

    def _free_in_burst(self) -> bool:
        """Messages wait, the writer has nothing queued or in flight, and a full batch was flushed less than
        ``batch_interval_s`` ago: the store is free in a burst (or at its end), so they are written now
        rather than up to ``batch_interval_s`` later (a burst's tail, or the input arriving slower than
        the writer writes).  Under a light load nothing is full and batches keep ``batch_interval_s``."""
        return (bool(self._pending) and not self._writing and self._queue.empty()
                and self.monotonic() - self._full_at < self.cfg.batch_interval_s)

    async def _write_metrics(self) -> None:
        self.metrics.spool_bytes = self.spool.bytes
        idle = self.metrics.idle_s(self.clock())
        if self.metrics.connected and idle > self.cfg.silence_warn_s:
            log.warning("connected but no message for an unusual time: are the gateways or the broker's "
                        "routing broken?", extra={"idle_s": round(idle), "threshold_s": self.cfg.silence_warn_s})
        log.info("collector status", extra=self.metrics.summary())
        self.ingestor.log_summary.emit()  # rejects, unknown cards, anomalies: counted per interval, not per message
        if not self.writer.healthy:
            return  # the spool is draining: self-metrics wait for the next tick rather than jump the queue
        try:
            await self.store.write(Batch(metrics=[self.metrics.sample(self.clock())]))
        except (TransientStoreError, PermanentStoreError) as exc:
            log.warning("could not write self-metrics", extra={"error": str(exc)[:200]})

    # -- MQTT -----------------------------------------------------------------------------------

    def _client(self) -> aiomqtt.Client:
        status = STATUS_TOPIC.format(component=self.cfg.instance)
        return aiomqtt.Client(**client_kwargs(
            self.settings, identifier=self.cfg.client_id, clean_session=False,
            will=aiomqtt.Will(status, b"offline", qos=1, retain=True)))

    async def _consume(self) -> None:
        """One connection: messages arrive through ``_arrived`` as they are read; a full pending list is flushed."""
        client = self._client()
        receiver = Receiver(client, self._arrived)  # manual acks, many messages per read, acks written together
        async with client:
            for topic in SUBSCRIPTIONS:
                await client.subscribe(topic, qos=1)
            status = STATUS_TOPIC.format(component=self.cfg.instance)
            await client.publish(status, b"online", qos=1, retain=True)
            log.info("connected and subscribed", extra={"broker": client_kwargs(self.settings)["hostname"],
                                                         "client_id": self.cfg.client_id})
            self.connected.set()
            self.metrics.connected = True
            try:
                while True:
                    await receiver.wait(self._full)
                    await self.flush()
            finally:
                self.connected.clear()
                self.metrics.connected = False
                if receiver.connected:  # clean stop: say so before leaving
                    await self.flush()
                    await self._queue_written(self._writer_task)
                    await client.publish(status, b"offline", qos=1, retain=True)

    def _arrived(self, topic: str, payload: bytes, ack: Ack) -> None:
        self.handle(topic, payload, ack)
        if self._is_full():
            self._full.set()

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
        _settle_heap()
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
