"""Broker URLs to aiomqtt clients, manual acknowledgement, and the collector's receive path, in one place.

aiomqtt acknowledges QoS 1 messages as soon as they arrive; a collector that
promises not to lose acknowledged data must instead acknowledge after the
write.  paho (under aiomqtt) can do that with ``manual_ack_set``; it is
reached through a private attribute, so only this module touches it, as it
alone touches the private parts ``Receiver`` needs (see there).
"""

from __future__ import annotations

import asyncio
import ssl
import struct
from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import paho.mqtt.client as mqtt

from meterwatch.redact import redact_url
from meterwatch.settings import Settings

Ack = Callable[[], None]


def client_kwargs(settings: Settings, **extra: Any) -> dict[str, Any]:
    parts = urlsplit(settings.broker)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"broker URL must be mqtt://host:port or mqtts://host:port, got {redact_url(settings.broker)!r}")
    tls = parts.scheme in ("mqtts", "ssl")
    kwargs: dict[str, Any] = {
        "hostname": parts.hostname or "127.0.0.1",
        "port": parts.port or (8883 if tls else 1883),
        "username": settings.broker_user or parts.username,
        "password": (settings.broker_password.get_secret_value() if settings.broker_password
                     else parts.password),
    }
    if tls:
        kwargs["tls_context"] = ssl.create_default_context(
            cafile=str(settings.broker_ca_file) if settings.broker_ca_file else None)
    kwargs.update(extra)
    return kwargs


def enable_manual_ack(client: aiomqtt.Client) -> None:
    """Must be called before the client connects."""
    client._client.manual_ack_set(True)  # noqa: SLF001


def ack_for(client: aiomqtt.Client, message: aiomqtt.Message) -> Ack:
    """A callable that acknowledges ``message`` on the connection it came from.

    After a reconnect the old connection's packet ids mean nothing (or worse,
    another message), so an ack for a dropped connection does nothing: the
    broker redelivers and the store's idempotence absorbs the repeat.
    """
    return _paho_ack(client, message.mid, message.qos)


def _paho_ack(client: aiomqtt.Client, mid: int, qos: int) -> Ack:
    """Acknowledge packet ``mid`` through paho, on the client's current connection only."""
    paho = client._client  # noqa: SLF001
    disconnected = client._disconnected  # noqa: SLF001  (this connection's, replaced on reconnect)

    def ack() -> None:
        if qos > 0 and not disconnected.done():
            paho.ack(mid, qos)

    return ack


# -- the collector's receive and acknowledge path, beside paho ---------------------------------------

Deliver = Callable[[str, bytes, Ack], None]
PUBLISH, PUBACK = 0x30, 0x40
PUBACK_PACKET = struct.Struct("!BBH")
READ_BYTES = 64 * 1024  # a read: some 600 messages of four readings
MAX_READS_PER_WAKEUP = 4  # (TLS gives 16 KiB a read) then other tasks get a turn; the rest is read on the next


class Receiver:
    """One client's messages handed to ``deliver`` as they are read, and their PUBACKs written together.

    aiomqtt reads one packet per event-loop wake-up (paho's ``loop_read``,
    a few small ``recv`` calls a packet), paho builds an ``MQTTMessage`` and
    matches callbacks, aiomqtt wraps it again and queues it for an iterator,
    and paho's ``ack`` queues and schedules one write per message: about
    60 us of CPU a message.  Here the socket's reader callback reads all that
    is there in big chunks and takes the PUBLISH packets of QoS 0 and 1 (MQTT
    3.1.1) out of the stream itself, each handed at once to
    ``deliver(topic, payload, ack)``; every other packet (CONNACK, SUBACK,
    PUBACK of our own publishes, PINGRESP, a QoS 2 PUBLISH) is passed on to
    paho, which reads it through ``loop_read`` as before, so connecting,
    subscribing, publishing, keepalive and disconnecting stay paho's and
    aiomqtt's.  ``client.messages`` gets nothing.

    Acks go out in arrival order (MQTT 3.1.1 [MQTT-4.6.0-2]), whatever order
    they are called in: a message acked early (a partition's skipped one)
    waits for those before it; those ready in one turn of the loop (a batch
    made durable) go out as one socket write.  An ack of a
    connection that has dropped does nothing (see ``ack_for``).

    Paho's private ``_sock`` (replaced by the view that sees only what is
    passed on) and ``_packet_queue`` (the acks, as one packet) are reached
    here and nowhere else; ``tests/test_mqtt_receiver.py`` fails if paho
    or aiomqtt changes under them.  Construct before connecting.
    """

    def __init__(self, client: aiomqtt.Client, deliver: Deliver) -> None:
        self._client = client
        self._paho = paho = client._client  # noqa: SLF001
        if paho.protocol not in (mqtt.MQTTv31, mqtt.MQTTv311):
            raise ValueError("Receiver reads MQTT 3.1.1 PUBLISH packets; MQTT 5 has properties in them")
        self._deliver = deliver
        self._loop = asyncio.get_running_loop()
        self._view: _PahoView | None = None  # the socket as paho sees it, per connection
        self._inbox = bytearray()  # bytes read, not yet a whole packet
        self._acks = bytearray()  # PUBACKs of this turn of the loop, in the order they were called
        self._acks_of: asyncio.Future[None] | None = None  # the connection they belong to (its ``_disconnected``)
        self._unacked: deque[list] = deque()  # [mid, acked] of this connection's QoS 1 messages, in arrival order
        paho.manual_ack_set(True)
        paho.on_message = self._on_message  # a QoS 2 message only: paho handles those
        aiomqtt_open = paho.on_socket_open

        def on_socket_open(paho_client: mqtt.Client, userdata: Any, sock: Any) -> None:
            # On the thread that connects, before CONNECT is sent: nothing can have been read yet.
            view = self._view = _PahoView(sock)
            paho_client._sock = view  # noqa: SLF001
            self._inbox = bytearray()
            self._unacked = deque()  # the old connection's ids mean nothing now
            aiomqtt_open(paho_client, userdata, sock)  # its reader (replaced just below), its keepalive task
            self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), self._read, view)

        paho.on_socket_open = on_socket_open

    @property
    def connected(self) -> bool:
        return not self._client._disconnected.done()  # noqa: SLF001

    async def wait(self, event: asyncio.Event) -> None:
        """Until ``event`` is set; ``aiomqtt.MqttError`` when the connection drops first (as ``client.messages``).

        Set counts even if it was cleared before this returns (a flush on the timer clears it meanwhile)."""
        disconnected = self._client._disconnected  # noqa: SLF001
        waiter = asyncio.ensure_future(event.wait())
        try:
            done, _ = await asyncio.wait((waiter, disconnected), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if waiter in done or not disconnected.done():
            return
        why = None if disconnected.cancelled() else disconnected.exception()
        raise aiomqtt.MqttError("Disconnected while receiving") from why

    # -- reading ------------------------------------------------------------------------------------

    def _read(self, view: _PahoView) -> None:
        """The socket is readable: read what is there, deliver the PUBLISH packets, pass the rest to paho."""
        if view is not self._view:
            return  # a closed connection's reader
        try:
            more = self._receive(view)
            self._split(view)
            while (view.passed or view.lost) and self._paho.loop_read() == mqtt.MQTT_ERR_SUCCESS:
                pass  # paho reads what was passed on; a lost connection it closes and reports
            if more:
                self._loop.call_soon(self._read, view)  # TLS may hold decrypted bytes the selector cannot see
        except Exception as exc:  # noqa: BLE001  (as aiomqtt's reader: the connection is broken)
            if not self._client._disconnected.done():  # noqa: SLF001
                self._client._disconnected.set_exception(exc)  # noqa: SLF001

    def _receive(self, view: _PahoView) -> bool:
        """Read into the inbox until the socket would block; True when it stopped with more perhaps there."""
        for _ in range(MAX_READS_PER_WAKEUP):
            try:
                data = view.sock.recv(READ_BYTES)
            except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return False
            except OSError as exc:
                view.lost = exc
                return False
            if not data:
                view.lost = ConnectionResetError("the broker closed the connection")
                return False
            self._inbox += data
        return True

    def _split(self, view: _PahoView) -> None:
        """Every whole packet in the inbox: a QoS 0 or 1 PUBLISH delivered, anything else passed on to paho."""
        buf, pos, end_of_data = self._inbox, 0, len(self._inbox)
        while pos < end_of_data:
            start, length = _remaining_length(buf, pos + 1)
            if start < 0:
                if start == -2:  # more than 4 length bytes: paho says it is a protocol error and disconnects
                    view.passed += buf[pos:]
                    pos = end_of_data
                break  # the rest of the packet is still on its way
            end = start + length
            if end > end_of_data:
                break
            header = buf[pos]
            if header & 0xF0 != PUBLISH or header & 0x04 or not self._publish(buf, header, start, end):
                view.passed += buf[pos:end]
            pos = end
        del buf[:pos]

    def _publish(self, buf: bytearray, header: int, start: int, end: int) -> bool:
        """Deliver a QoS 0 or 1 PUBLISH; False (paho's to refuse) when it is malformed."""
        topic_end = start + 2 + (buf[start] << 8 | buf[start + 1])
        qos = header >> 1 & 3
        payload_at = topic_end + 2 if qos else topic_end
        if payload_at > end:
            return False
        topic = bytes(buf[start + 2:topic_end]).decode("utf-8", "replace")  # bad bytes: a bad-topic reject
        payload = bytes(buf[payload_at:end])
        if qos:
            waiting = [buf[topic_end] << 8 | buf[topic_end + 1], False]
            self._unacked.append(waiting)
            self._deliver(topic, payload, partial(self._ack, waiting, self._client._disconnected))  # noqa: SLF001
        else:
            self._deliver(topic, payload, _nothing_to_ack)
        return True

    def _on_message(self, _paho: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        """A PUBLISH paho read (QoS 2: never granted, the collector subscribes at QoS 1): acked by paho."""
        self._deliver(message._topic.decode("utf-8", "replace"), message.payload,  # noqa: SLF001
                      _paho_ack(self._client, message.mid, message.qos))

    # -- acknowledging ------------------------------------------------------------------------------

    def _ack(self, waiting: list, connection: asyncio.Future[None]) -> None:
        """Acknowledged: its PUBACK leaves once every message that arrived before it is acknowledged too
        (arrival order, [MQTT-4.6.0-2]: a partition's skipped message, acked at once, waits for the batch
        before it; out of order, each PUBACK made mosquitto search its list of messages in flight)."""
        if connection.done():
            return  # that connection dropped: its packet ids mean nothing now, the broker redelivers
        if self._acks_of is not connection:
            self._send_acks()
            self._acks_of = connection
        waiting[1] = True
        unacked = self._unacked
        if not self._acks and unacked and unacked[0][1]:
            self._loop.call_soon(self._send_acks)
        while unacked and unacked[0][1]:
            self._acks += PUBACK_PACKET.pack(PUBACK, 2, unacked.popleft()[0])

    def _send_acks(self) -> None:
        acks, self._acks = self._acks, bytearray()
        if acks and self._acks_of is not None and not self._acks_of.done():
            self._paho._packet_queue(PUBACK, bytes(acks), 0, 0)  # noqa: SLF001  (written as one packet)


class _PahoView:
    """The socket as paho sees it behind a ``Receiver``: reads get only what was passed on, the rest is the socket."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.passed = bytearray()
        self.lost: OSError | None = None  # the connection broke: paho's next read says so

    def recv(self, bufsize: int) -> bytes:
        if self.passed:
            chunk = bytes(self.passed[:bufsize])
            del self.passed[:bufsize]
            return chunk
        if self.lost is not None:
            raise self.lost
        raise BlockingIOError

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def _remaining_length(buf: bytearray, at: int) -> tuple[int, int]:
    """(where the packet's body starts, its length) from the length bytes at ``at``; (-1, 0) when they are
    not all there yet, (-2, 0) when there are more than four (a protocol error)."""
    length, shift = 0, 0
    for i in range(at, min(at + 4, len(buf))):
        byte = buf[i]
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return i + 1, length
        shift += 7
    return (-2, 0) if len(buf) >= at + 4 else (-1, 0)


def _nothing_to_ack() -> None:
    """A QoS 0 message is never acknowledged."""
