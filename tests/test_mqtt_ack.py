"""``meterwatch.mqtt``'s manual acknowledgement against a real mosquitto, with a persistent session.

What the collector relies on: a message is acknowledged only when its ``ack`` is called (so one that is
not is redelivered after a reconnect), acknowledging it twice is harmless, and an ``ack`` kept from a
connection that dropped does nothing, even on a reconnected client where the same packet id now
means a redelivery.  "Not redelivered" is observed without waiting for nothing: after reconnecting, a
sentinel is published, and the broker sends a session's pending messages before any new one, so the
first message received must be the sentinel.
"""

from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import pytest

from meterwatch.mqtt import ack_for, enable_manual_ack

pytestmark = pytest.mark.servers


class Session:
    """A persistent MQTT session (fixed client id, clean session off) subscribed to one topic at QoS 1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.topic = f"test/ack/{uuid.uuid4().hex[:8]}"
        self.client_id = f"ack-{uuid.uuid4().hex[:8]}"

    def client(self) -> aiomqtt.Client:
        client = aiomqtt.Client("127.0.0.1", self.port, identifier=self.client_id, clean_session=False)
        enable_manual_ack(client)
        return client

    async def create(self) -> None:
        async with self.client() as client:
            await client.subscribe(self.topic, qos=1)

    async def publish(self, *payloads: str) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as publisher:
            for payload in payloads:
                await publisher.publish(self.topic, payload, qos=1)

    async def first_after_sentinel(self, client: aiomqtt.Client) -> str:
        """Publish a sentinel and return the payload of the first message that arrives on ``client``."""
        await self.publish("sentinel")
        return (await receive(client)).payload.decode()


async def receive(client: aiomqtt.Client) -> aiomqtt.Message:
    return await asyncio.wait_for(anext(client.messages), 10)


async def test_an_unacknowledged_message_is_redelivered_after_a_reconnect(mosquitto):
    session = Session(mosquitto.port)
    await session.create()
    await session.publish("m1")
    async with session.client() as client:
        first = await receive(client)
    async with session.client() as client:
        again = await receive(client)
    assert (first.payload, first.qos) == (b"m1", 1)
    assert again.payload == b"m1"  # manual acknowledgement on: leaving without acking kept it in the session


async def test_an_acknowledged_message_is_not_redelivered(mosquitto):
    session = Session(mosquitto.port)
    await session.create()
    await session.publish("m1", "m2")
    async with session.client() as client:
        m1, m2 = await receive(client), await receive(client)
        ack_for(client, m1)()
    async with session.client() as client:
        redelivered = await receive(client)
        assert await session.first_after_sentinel(client) == "sentinel"
    assert (m1.payload, m2.payload) == (b"m1", b"m2")
    assert redelivered.payload == b"m2"  # only the one never acknowledged


async def test_acknowledging_twice_is_harmless(mosquitto):
    session = Session(mosquitto.port)
    await session.create()
    await session.publish("m1", "m2")
    async with session.client() as client:
        m1, m2 = await receive(client), await receive(client)
        ack = ack_for(client, m1)
        ack()
        ack()
        assert await session.first_after_sentinel(client) == "sentinel"  # the connection is still fine
    async with session.client() as client:
        redelivered = await receive(client)
        assert await session.first_after_sentinel(client) == "sentinel"
    assert m2.payload == b"m2" and redelivered.payload == b"m2"  # the double ack did not touch m2


async def test_an_ack_from_a_dropped_connection_does_nothing_after_a_reconnect(mosquitto):
    session = Session(mosquitto.port)
    await session.create()
    await session.publish("m1")
    client = session.client()  # one client object, reconnected, as a reconnect loop might reuse it
    async with client:
        stale = ack_for(client, await receive(client))
    async with client:
        again = await receive(client)
        stale()  # same packet id on the new connection: acknowledging it here would be wrong
    async with client:
        third = await receive(client)
        ack_for(client, third)()
    async with client:
        assert await session.first_after_sentinel(client) == "sentinel"
    assert again.payload == third.payload == b"m1"
    assert again.mid == third.mid  # the broker resends with the same packet id: the stale ack could have hit it


async def test_a_qos0_message_needs_no_ack_and_acking_it_is_harmless(mosquitto):
    session = Session(mosquitto.port)
    async with session.client() as client:
        await client.subscribe(session.topic, qos=0)
        await session.publish("m0")
        m0 = await receive(client)
        ack_for(client, m0)()
        assert await session.first_after_sentinel(client) == "sentinel"
    assert (m0.payload, m0.qos) == (b"m0", 0)
