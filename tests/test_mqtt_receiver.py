"""``meterwatch.mqtt.Receiver`` against a real mosquitto, watched from the wire.

A recording TCP proxy sits between the client and the broker and parses
what crosses it (MQTT 3.1.1 fixed header: type in the high nibble, the
remaining length as a varint; PUBLISH and PUBACK carry the packet id,
https://docs.oasis-open.org/mqtt/mqtt/v3.1.1/os/mqtt-v3.1.1-os.html sections
2.2, 3.3 and 3.4), so what is acknowledged, when and in which order is
observed on the broker's side, not taken from the code under test.

"Not redelivered" is observed without waiting for nothing: after
reconnecting, a sentinel is published, and the broker sends a session's
pending messages before any new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import inspect
import json
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable

import aiomqtt
import paho.mqtt.client as paho
import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from meterwatch import mqtt
from meterwatch.mqtt import Receiver
from meterwatch.store import ReadingPoint, open_store
from tests.e2e.conftest import eventually, make_settings, running_collector, until
from tests.e2e.test_security import COLLECTOR_PASSWORD, GATEWAY_PASSWORD, secure_broker  # noqa: F401  (fixture)
from tests.helpers import tiny_registry

pytestmark = pytest.mark.servers
BURST = 400


class Wire:
    """A TCP proxy to the broker that parses the packets crossing it, each way."""

    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.published: list[int] = []  # packet ids of PUBLISH, broker to client, as sent
        self.acked: list[int] = []  # packet ids of PUBACK, client to broker, as sent
        self.on_ack: Callable[[], tuple[int, int]] | None = None  # what to note when PUBACKs pass
        self.seen: list[tuple[int, int]] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Wire:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        broker_r, broker_w = await asyncio.open_connection("127.0.0.1", self.broker_port)
        await asyncio.gather(self._pipe(client_r, broker_w, self._upstream),
                             self._pipe(broker_r, client_w, self._downstream), return_exceptions=True)

    async def _pipe(self, reader, writer, parse) -> None:
        buffer = bytearray()
        try:
            while data := await reader.read(65536):
                buffer += data
                parse(buffer)
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def _upstream(self, buffer: bytearray) -> None:
        acks = [mid for kind, _, mid in _packets(buffer) if kind == 4]
        if acks:
            self.acked += acks
            if self.on_ack is not None:
                self.seen.append(self.on_ack())

    def _downstream(self, buffer: bytearray) -> None:
        self.published += [mid for kind, qos, mid in _packets(buffer) if kind == 3 and qos]


def _packets(buffer: bytearray) -> list[tuple[int, int, int | None]]:
    """(type, QoS, packet id) of each whole packet at the front of ``buffer``, taken out of it."""
    out, pos = [], 0
    while pos + 2 <= len(buffer):
        length, shift, i = 0, 0, pos + 1
        while i < len(buffer):
            length |= (buffer[i] & 0x7F) << shift
            shift += 7
            i += 1
            if buffer[i - 1] < 0x80:
                break
        else:
            break
        if i + length > len(buffer) or buffer[i - 1] >= 0x80:
            break
        kind, qos = buffer[pos] >> 4, buffer[pos] >> 1 & 3
        mid = None
        if kind == 3 and qos:
            at = i + 2 + (buffer[i] << 8 | buffer[i + 1])
            mid = buffer[at] << 8 | buffer[at + 1]
        elif kind == 4:
            mid = buffer[i] << 8 | buffer[i + 1]
        out.append((kind, qos, mid))
        pos = i + length
    del buffer[:pos]
    return out


class Session:
    def __init__(self, broker_port: int) -> None:
        self.broker_port = broker_port
        self.topic = f"test/receiver/{uuid.uuid4().hex[:8]}"
        self.client_id = f"receiver-{uuid.uuid4().hex[:8]}"

    async def create(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.broker_port, identifier=self.client_id,
                                  clean_session=False) as client:
            await client.subscribe(self.topic, qos=1)

    async def publish(self, *payloads: str) -> None:
        async with aiomqtt.Client("127.0.0.1", self.broker_port) as publisher:
            for payload in payloads:
                await publisher.publish(self.topic, payload, qos=1)

    @contextlib.asynccontextmanager
    async def receiving(self, port: int) -> AsyncIterator[list[tuple[str, bytes, mqtt.Ack, int]]]:
        """Connected through ``port`` with a Receiver: (topic, payload, ack, turn of the event loop) per message."""
        got: list[tuple[str, bytes, mqtt.Ack, int]] = []
        turn = [0]
        loop = asyncio.get_running_loop()
        ticking = [True]

        def tick() -> None:
            turn[0] += 1
            if ticking[0]:
                loop.call_soon(tick)

        client = aiomqtt.Client("127.0.0.1", port, identifier=self.client_id, clean_session=False)
        Receiver(client, lambda topic, payload, ack: got.append((topic, payload, ack, turn[0])))
        tick()
        try:
            async with client:
                yield got
        finally:
            ticking[0] = False


async def _received(got: list, count: int) -> None:
    await until(lambda: len(got) >= count, f"{count} messages")


async def test_a_burst_is_read_many_a_turn_in_order_and_acked_only_when_asked_in_order(mosquitto):
    session = Session(mosquitto.port)
    await session.create()
    payloads = [f"m{k}" for k in range(BURST)]
    await session.publish(*payloads)
    async with Wire(mosquitto.port) as wire, session.receiving(wire.port) as got:
        await _received(got, BURST)
        assert [payload.decode() for _, payload, _, _ in got] == payloads
        assert {topic for topic, _, _, _ in got} == {session.topic}
        turns = len({turn for *_, turn in got})
        assert turns <= BURST // 20  # many messages a wake-up (aiomqtt: one a turn)
        await session.publish("sentinel")
        await _received(got, BURST + 1)  # a round trip later: still nothing acknowledged
        assert wire.acked == []
        for _, _, ack, _ in got[:BURST]:
            ack()
        await until(lambda: len(wire.acked) == BURST, "every PUBACK on the wire")
        assert wire.acked == wire.published[:BURST]  # in the order the broker sent them [MQTT-4.6.0-2]
    async with Wire(mosquitto.port) as wire, session.receiving(wire.port) as again:
        await _received(again, 1)
        assert again[0][1] == b"sentinel"  # the only one never acknowledged; nothing of the burst came back


async def test_acks_called_out_of_order_leave_in_arrival_order(mosquitto):
    """A partition's skipped message is acked on arrival, before the batch that came before it is durable:
    its PUBACK waits for theirs ([MQTT-4.6.0-2]; out of order, mosquitto searched its in-flight list for
    every one and used 8 times the CPU in the two-worker burst)."""
    session = Session(mosquitto.port)
    await session.create()
    await session.publish("m0", "m1", "m2", "m3")
    async with Wire(mosquitto.port) as wire, session.receiving(wire.port) as got:
        await _received(got, 4)
        got[3][2]()
        got[1][2]()
        await session.publish("sentinel")
        await _received(got, 5)  # a round trip later: the later ones' PUBACKs are held
        assert wire.acked == []
        got[0][2]()  # m0, then m1 (acked before) may go; m2 holds m3
        await until(lambda: len(wire.acked) == 2, "two PUBACKs")
        got[2][2]()
        await until(lambda: len(wire.acked) == 4, "four PUBACKs")
        assert wire.acked == wire.published[:4]

async def test_what_is_not_acked_is_redelivered_and_an_ack_of_a_dropped_connection_does_nothing(mosquitto):
    session = Session(mosquitto.port)
    await session.create()
    await session.publish(*(f"m{k}" for k in range(10)))
    async with Wire(mosquitto.port) as wire, session.receiving(wire.port) as first:
        await _received(first, 10)
        for _, _, ack, _ in first[:4]:
            ack()
        await until(lambda: len(wire.acked) == 4, "four PUBACKs")
    async with Wire(mosquitto.port) as wire, session.receiving(wire.port) as second:
        await _received(second, 6)
        assert [p.decode() for _, p, _, _ in second] == [f"m{k}" for k in range(4, 10)]
        for _, _, stale, _ in first[4:]:
            stale()  # the same packet ids may mean these redeliveries now: acknowledging them would be wrong
        await session.publish("sentinel")
        await _received(second, 7)
        assert wire.acked == []
    async with Wire(mosquitto.port) as wire, session.receiving(wire.port) as third:
        await _received(third, 7)
        assert [p.decode() for _, p, _, _ in third] == [f"m{k}" for k in range(4, 10)] + ["sentinel"]


async def test_an_event_set_and_cleared_before_the_waiter_runs_is_not_a_disconnection(mosquitto):
    """The collector waits for a full batch; the timer's flush may clear the event before the waiter runs.
    That once read as a dropped connection and killed the consumer (found by the midnight benchmark)."""
    client = aiomqtt.Client("127.0.0.1", mosquitto.port)
    receiver = Receiver(client, lambda topic, payload, ack: None)
    async with client:
        event = asyncio.Event()
        waiting = asyncio.create_task(receiver.wait(event))
        await asyncio.wait({waiting}, timeout=0)  # it is waiting now
        event.set()
        event.clear()  # before the waiter runs again
        await asyncio.wait_for(waiting, timeout=10)  # returns: no error
        assert receiver.connected
    with pytest.raises(aiomqtt.MqttError):  # a dropped connection still says so
        await receiver.wait(asyncio.Event())

async def test_a_qos0_message_is_delivered_and_needs_no_ack(mosquitto):
    session = Session(mosquitto.port)
    client = aiomqtt.Client("127.0.0.1", mosquitto.port, identifier=session.client_id)
    got: list[tuple[str, bytes, mqtt.Ack]] = []
    Receiver(client, lambda topic, payload, ack: got.append((topic, payload, ack)))
    async with client:
        await client.subscribe(session.topic, qos=0)
        await session.publish("q0")
        await _received(got, 1)
        got[0][2]()
        await client.publish(session.topic, b"after", qos=1)  # paho's own PUBLISH/PUBACK still work
        await _received(got, 2)
    assert [(t, p) for t, p, _ in got] == [(session.topic, b"q0"), (session.topic, b"after")]


async def test_the_collector_acks_a_burst_only_once_it_is_stored_in_arrival_order_and_redelivers_the_rest(
        mosquitto, duck_url, tmp_path):
    """A burst queued in the collector's session, read many a turn: at every PUBACK on the wire the store
    already holds the readings of every message acknowledged so far, and the PUBACKs follow the broker's
    order.  Then a collector that cannot make its batch durable (store gone, spool full) acknowledges
    nothing, and the next one is sent it all again and stores it."""
    registry = tiny_registry(tmp_path / "registry")
    t0 = (int(time.time()) // 900 - 3 * BURST) * 900
    topic = "meterwatch/up/inst-a/a-w1/reading"
    bodies = [json.dumps({"readings": [{"ts": t0 + 900 * (2 * k + j), "value": 1.0 + 2 * k + j} for j in range(2)]})
              for k in range(BURST)]
    settings = make_settings(mosquitto.port, duck_url, tmp_path / "registry", client_id="test-burst",
                             batch_size=1000, batch_interval_s=0.3, shutdown_grace_s=0.5)
    async with running_collector(settings, registry):
        pass  # the persistent session now exists on the broker
    await _publish(mosquitto.port, topic, bodies)
    async with Wire(mosquitto.port) as wire:
        via_wire = settings.model_copy(update={"broker": f"mqtt://127.0.0.1:{wire.port}"})
        async with running_collector(via_wire, registry) as collector:
            wire.on_ack = lambda: (len(wire.acked), collector.metrics.stored)
            await until(lambda: len(wire.acked) >= BURST, "the burst acknowledged", timeout=30)
        assert collector.metrics.received == BURST
    assert wire.acked == wire.published  # every one, in the order the broker sent them [MQTT-4.6.0-2]
    assert wire.seen and all(stored >= 2 * acked for acked, stored in wire.seen)  # never ahead of the store
    reader = open_store(duck_url)
    await reader.open()
    assert [r.register for r in await reader.fetch(ReadingPoint)] == [1.0 + k for k in range(2 * BURST)]
    await reader.close()

    later = [json.dumps({"ts": t0 + 900 * (2 * BURST + k), "value": 1.0 + 2 * BURST + k}) for k in range(5)]
    await _publish(mosquitto.port, topic, later)
    async with Wire(mosquitto.port) as wire:
        dead = make_settings(wire.port, "influxdb://127.0.0.1:9/none", tmp_path / "registry", client_id="test-burst",
                             shutdown_grace_s=0.5, spool_max_bytes=64, batch_interval_s=0.2, store_timeout_s=1)
        async with running_collector(dead, registry) as failing:
            assert await eventually(lambda: failing.metrics.received, 5) == 5
            await until(lambda: failing.writer.full_since is not None, "the writer to hold back with the spool full")
        assert wire.acked == [] and failing.metrics.stored == 0
    async with running_collector(settings, registry) as again:
        await until(lambda: again.metrics.stored == 5, "the redelivered messages stored")
    reader = open_store(duck_url)
    await reader.open()
    assert len(await reader.fetch(ReadingPoint)) == 2 * BURST + 5
    await reader.close()


async def _publish(port: int, topic: str, bodies: list[str]) -> None:
    async with aiomqtt.Client("127.0.0.1", port) as publisher:
        for body in bodies:
            await publisher.publish(topic, body, qos=1)


async def test_the_private_parts_reached_are_there_in_the_pinned_versions():
    """Receiver reaches into paho (``_sock``, ``_packet_queue``) and aiomqtt (``_client``, ``_disconnected``,
    its socket-open callback registering the reader): pinned in pyproject, and checked here."""
    pins = {name: SpecifierSet(spec) for name, spec in (("paho-mqtt", ">=2.2,<2.3"), ("aiomqtt", ">=2.5,<2.6"))}
    for name, spec in pins.items():
        assert Version(importlib.metadata.version(name)) in spec, f"{name} outside the range Receiver is tested on"
    assert list(inspect.signature(paho.Client._packet_queue).parameters)[:5] == [
        "self", "command", "packet", "mid", "qos"]
    assert "self._sock.recv(" in inspect.getsource(paho.Client._sock_recv)
    assert "self._call_socket_open(self._sock)" in inspect.getsource(paho.Client.reconnect)
    assert inspect.getsource(paho.Client.reconnect).index("_call_socket_open") < inspect.getsource(
        paho.Client.reconnect).index("_send_connect")  # the socket is ours before anything is sent
    client = aiomqtt.Client("127.0.0.1", 1)
    assert isinstance(client._client, paho.Client) and isinstance(client._disconnected, asyncio.Future)  # noqa: SLF001
    assert "add_reader" in inspect.getsource(aiomqtt.Client._on_socket_open)  # noqa: SLF001


async def test_over_tls_a_burst_bigger_than_a_read_comes_whole_and_in_order(secure_broker):  # noqa: F811
    """TLS hands over at most a record (16 KiB) a read: a burst of ~200 KiB, packets split across reads and
    wake-ups, still arrives whole and in order, and its acks clear the session."""
    tls = ssl.create_default_context(cafile=str(secure_broker.workdir / "ca.crt"))
    topic, client_id = "meterwatch/up/inst-a/a-w1/reading", f"tls-{uuid.uuid4().hex[:8]}"
    payloads = [f"{k:04d}".encode() + b"x" * 500 for k in range(BURST)]

    def collector_client() -> aiomqtt.Client:
        return aiomqtt.Client("127.0.0.1", secure_broker.port, identifier=client_id, clean_session=False,
                              username="collector", password=COLLECTOR_PASSWORD, tls_context=tls)

    async with collector_client() as client:
        await client.subscribe("meterwatch/up/#", qos=1)
    async with aiomqtt.Client("127.0.0.1", secure_broker.port, username="gw-a", password=GATEWAY_PASSWORD,
                              tls_context=tls) as gateway:
        for payload in payloads:
            await gateway.publish(topic, payload, qos=1)
    for expected in (payloads, []):
        client = collector_client()
        got: list[tuple[str, bytes, mqtt.Ack]] = []
        Receiver(client, lambda t, p, ack: got.append((t, p, ack)))  # noqa: B023  (used within this iteration)
        async with client:
            if expected:
                await _received(got, BURST)
                for _, _, ack in got:
                    ack()
            await client.publish("meterwatch/status/tls-test", b"done", qos=1)  # a round trip after the acks
        assert [p for _, p, _ in got] == expected  # then: nothing left in the session
