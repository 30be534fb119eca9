"""The whole collector under hostile input on a real mosquitto: it stays up and every message is accounted for.

Hypothesis draws a stream of messages on every topic kind (JSON readings and
weighings, DL/T 645 and CJ/T 188 frames, topics that almost match), mixing
valid readings of registry devices with hostile payloads: huge integers,
NaN, control characters, nested junk, wrong types, binary garbage,
truncated frames, valid frames with a wrong address.  The stream goes to a
running collector (DuckDB store) in one go, and then:

- the collector is still running (no component died);
- every message received was acknowledged, and each ended as stored data,
  a duplicate, or rejects with a reason (``messages_by_outcome``);
- the store holds exactly the rejects the collector counted, reason by
  reason, and none is an ``internal_error`` (that would be a bug to fix);
- every valid reading and weighing is in the store with its value;
- every topic that almost matches left a reject naming its topic.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import reasons
from meterwatch.registry import Registry
from meterwatch.store import ReadingPoint, RejectRecord, WeighingPoint, open_store
from simulators.traffic import Message
from tests.e2e.conftest import eventually, make_settings, running_collector
from tests.e2e.stream import publish
from tests.helpers import cjt188_water_frame, dlt645_energy_frame, tiny_registry

pytestmark = pytest.mark.servers

MAX_PAYLOAD, MAX_BATCH = 2048, 3  # the collector's limits in this test: oversized payloads and batches are drawn
GRID = 900  # valid readings and weighings sit on this grid; hostile in-range times never do (they are odd)
WATER = ("inst-a", "a-w1"), ("inst-b", "b-w1")
ELECTRICITY = ("inst-a", "a-e1", "000000000002")
WATER_FRAME = ("inst-a", "a-w1", "00000000000001")
SCALE = ("inst-a", "a-s1")
ALMOST = ("meterwatch/up/inst-a/a-w1/readings", "meterwatch/up/inst-a/a-w1/reading/extra",
          "meterwatch/up/inst-a/reading", "meterwatch/up/inst-a/a-w1", "meterwatch/up/inst-a/a-w1/frame",
          "meterwatch/up/inst-a/a-w1/frame/dlt645/x", "meterwatch/up//a-w1/reading", "meterwatch/up")


@dataclass(frozen=True)
class Valid:
    """A message that must be stored: the item is placed on the grid when the stream is built."""

    kind: str  # "reading" or "weighing"
    device: int  # index into WATER for readings
    known_card: bool = True
    weight_kg: float = 1.0
    retried: bool = False  # the gateway sends it twice: the second is a duplicate


# -- hostile values -------------------------------------------------------------------------------

huge_ints = (st.sampled_from([10**400, -(10**400), 2**1024, 10**4000])  # beyond a float: OverflowError bait
             | st.integers(min_value=10**18, max_value=10**400) | st.integers(min_value=-(10**400), max_value=-1))
odd_in_range = st.integers(min_value=1_000_000_000, max_value=1_800_000_000).map(lambda t: t | 1)
control = st.sampled_from(["\x00", "\x01", "\n", "\r", "\x1b", "\x7f", "\u2028", "\ufeff"])
unicode_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)


@st.composite
def bad_rfc3339(draw) -> str:
    t = draw(odd_in_range)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + draw(st.sampled_from(["+00:00", "Z", "", "+99:00"]))
    return draw(st.sampled_from([text + draw(control), draw(control) + text, text, text.replace("T", draw(control))]))


junk = st.recursive(st.none() | st.booleans() | st.integers() | huge_ints | unicode_text
                    | st.floats(allow_nan=False, allow_infinity=False),
                    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(unicode_text, kids, max_size=3),
                    max_leaves=8)
hostile_ts = huge_ints | odd_in_range | bad_rfc3339() | st.floats(min_value=1e12) | junk
hostile_value = huge_ints | st.floats(max_value=-1e-9) | st.just(float("nan")) | st.just(float("inf")) | junk


def to_json(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


@st.composite
def hostile_reading(draw) -> Message:
    inst, dev = draw(st.sampled_from(WATER + (("inst-a", "a-e1"), ("inst-b", "a-w1"), ("inst-a", "ghost"),
                                              ("inst-a", "a-s1"))))
    item = {"ts": draw(hostile_ts | odd_in_range), "value": draw(hostile_value | st.floats(0, 1e6))}
    if draw(st.booleans()):
        item["unit"] = draw(st.sampled_from(["m3", "kWh"]) | unicode_text | st.just("m3\x00"))
    body = {"readings": draw(st.lists(st.just(item) | junk, min_size=0, max_size=4))} if draw(st.booleans()) else item
    if draw(st.integers(0, 9)) == 0:
        body = draw(junk)
    return Message(0.0, f"meterwatch/up/{inst}/{dev}/reading", to_json(body))


@st.composite
def hostile_weighing(draw) -> Message:
    item = {"ts": draw(hostile_ts | odd_in_range), "card": draw(unicode_text | st.just("CARD01\x00") | junk),
            "weight_kg": draw(hostile_value | st.floats(0, 10_000))}
    body = {"weighings": [item, draw(junk)]} if draw(st.booleans()) else item
    return Message(0.0, "meterwatch/up/inst-a/a-s1/weighing", to_json(body))


@st.composite
def hostile_frame(draw) -> Message:
    if draw(st.booleans()):
        inst, dev, address = ELECTRICITY
        suffix, frame = "frame/dlt645", dlt645_energy_frame
    else:
        inst, dev, address = WATER_FRAME
        suffix, frame = "frame/cjt188", cjt188_water_frame
    wrong = draw(st.text("0123456789", min_size=len(address), max_size=len(address)))
    good = frame(draw(st.sampled_from([address, wrong])), draw(st.floats(0, 999_999)))
    how = draw(st.sampled_from(["whole", "truncated", "flipped", "hex", "garbage"]))
    if how == "truncated":
        good = good[:draw(st.integers(0, len(good) - 1))]
    elif how == "flipped":
        i = draw(st.integers(0, len(good) - 1))
        good = good[:i] + bytes([good[i] ^ draw(st.integers(1, 255))]) + good[i + 1:]
    elif how == "hex":
        good = good.hex(" ").encode()
    elif how == "garbage":
        good = draw(st.binary(max_size=80) | st.binary(min_size=MAX_PAYLOAD + 1, max_size=MAX_PAYLOAD + 64))
    return Message(0.0, f"meterwatch/up/{inst}/{dev}/{suffix}", good)


@st.composite
def almost_topic(draw) -> Message:
    level = st.text(st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="+#/"), max_size=8)
    topic = draw(st.sampled_from(ALMOST) | st.builds(lambda a, b: f"meterwatch/up/{a}/{b}", level, level))
    return Message(0.0, topic, draw(st.binary(max_size=40) | st.just(b'{"ts": 1, "value": 1}')))


valid = (st.builds(Valid, st.just("reading"), st.integers(0, len(WATER) - 1), retried=st.booleans())
         | st.builds(Valid, st.just("weighing"), st.just(0), st.booleans(), st.floats(0.1, 4999)))
streams = st.lists(valid | valid | hostile_reading() | hostile_weighing() | hostile_frame() | almost_topic(),
                   min_size=20, max_size=80)  # larger examples overflow hypothesis's buffer


# -- the stream and its truth ------------------------------------------------------------------------

@dataclass
class Truth:
    readings: dict[tuple[str, int], float]  # (device, ts) -> register
    weighings: dict[tuple[int, str], float]  # (ts, card) -> kg
    almost: list[str]
    retries: int = 0


def place(items: list, now: int) -> tuple[list[Message], Truth]:
    """Valid items get grid times (distinct per device) and rising registers; hostile ones stay as drawn."""
    t0 = (now // GRID - len(items) - 8) * GRID
    truth = Truth({}, {}, [])
    messages = []
    for i, item in enumerate(items):
        ts = t0 + GRID * i
        if isinstance(item, Message):
            messages.append(item)
            if item.topic in ALMOST or item.topic.count("/") == 3:  # what almost_topic() draws
                truth.almost.append(item.topic)
            continue
        if item.kind == "reading":
            inst, dev = WATER[item.device]
            value = 10.0 + i
            truth.readings[(dev, ts)] = value
            message = Message(0.0, f"meterwatch/up/{inst}/{dev}/reading", to_json({"ts": ts, "value": value}))
            messages += [message, message] if item.retried else [message]
            truth.retries += item.retried
        else:
            card = "CARD01" if item.known_card else f"CARD-X{i}"
            truth.weighings[(ts, card)] = round(item.weight_kg, 3)
            messages.append(Message(0.0, "meterwatch/up/inst-a/a-s1/weighing",
                                    to_json({"ts": ts, "card": card, "weight_kg": round(item.weight_kg, 3)})))
    return messages, truth


async def forget_session(port: int, client_id: str) -> None:
    """Drop the collector's persistent session, so later tests' messages are not queued for it."""
    async with aiomqtt.Client("127.0.0.1", port, identifier=client_id, clean_session=True):
        pass


async def run_stream(port: int, registry: Registry, workdir: Path, messages: list[Message]) -> dict:
    store_url = f"duckdb://{workdir / 'store.duckdb'}"
    settings = make_settings(port, store_url, workdir / "registry", batch_size=50,
                             max_payload_bytes=MAX_PAYLOAD, max_batch_readings=MAX_BATCH)
    async with running_collector(settings, registry) as collector:
        await publish(port, messages, rate=5000)
        acked = await eventually(lambda: _acknowledged(collector), len(messages), timeout=30)
        alive = collector.connected.is_set()
    await forget_session(port, settings.collector.client_id)
    store = open_store(store_url)
    await store.open()
    try:
        return {"metrics": collector.metrics, "acked": acked, "alive": alive,
                "rejects": await store.fetch(RejectRecord), "readings": await store.fetch(ReadingPoint),
                "weighings": await store.fetch(WeighingPoint)}
    finally:
        await store.close()


async def _acknowledged(collector) -> int:
    return collector.metrics.acknowledged


FIGURES: Counter[str] = Counter()  # summed over examples; printed with -s for BENCHMARKS.md


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(items=streams)
def test_hostile_streams_never_stop_the_collector_and_every_message_is_accounted_for(mosquitto, items):
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        registry = tiny_registry(workdir / "registry")
        messages, truth = place(items, int(time.time()))
        seen = asyncio.run(run_stream(mosquitto.port, registry, workdir, messages))
    m = seen["metrics"]
    n = len(messages)
    assert seen["alive"] and m.received == n and seen["acked"] == n
    assert sum(m.messages_by_outcome.values()) == n
    assert set(m.messages_by_outcome) <= {"stored", "duplicate", "rejected"}
    rejects = seen["rejects"]
    assert all(r.reason and r.detail for r in rejects)
    assert Counter(r.reason for r in rejects) == m.rejected_by_reason and len(rejects) == m.rejected
    assert reasons.INTERNAL_ERROR not in m.rejected_by_reason, [r.detail for r in rejects
                                                                if r.reason == reasons.INTERNAL_ERROR]
    stored = {(r.device, r.ts): r.register for r in seen["readings"]}
    assert {k: stored.get(k) for k in truth.readings} == truth.readings
    assert m.duplicates >= truth.retries and m.messages_by_outcome["duplicate"] >= truth.retries
    weighed = {(w.ts, w.card): w.weight_kg for w in seen["weighings"]}
    assert {k: weighed.get(k) for k in truth.weighings} == truth.weighings
    refused_topics = Counter(r.topic for r in rejects if r.reason in (reasons.BAD_TOPIC, reasons.UNKNOWN_TOPIC))
    assert refused_topics == Counter(truth.almost)
    FIGURES.update({"examples": 1, "published": n, "acknowledged": seen["acked"],
                    "accounted": sum(m.messages_by_outcome.values()), "stored_points": m.stored,
                    "duplicates": m.duplicates, "rejects": m.rejected})
    FIGURES.update({f"outcome:{k}": v for k, v in m.messages_by_outcome.items()})
    FIGURES.update({f"reason:{k}": v for k, v in m.rejected_by_reason.items()})
    print("fuzz figures", dict(sorted(FIGURES.items())))


# -- the defects the fuzzing is built to find, as plain tests -------------------------------------

async def test_a_400_digit_timestamp_is_rejected_and_the_collector_keeps_storing(mosquitto, mosquitto_pub, tmp_path):
    """It was an OverflowError in the timestamp check: the consumer died, and the redelivery killed every restart."""
    registry = tiny_registry(tmp_path / "registry")
    store_url = f"duckdb://{tmp_path / 's.duckdb'}"
    settings = make_settings(mosquitto.port, store_url, tmp_path / "registry")
    t0 = (int(time.time()) // GRID - 4) * GRID
    poison = '{"ts": 1' + "0" * 400 + ', "value": 1}'
    async with running_collector(settings, registry) as collector:
        mosquitto_pub("meterwatch/up/inst-a/a-w1/reading", poison)
        mosquitto_pub("meterwatch/up/inst-a/a-w1/reading", json.dumps({"ts": t0, "value": 5.0}))
        assert await eventually(lambda: _acknowledged(collector), 2) == 2
    await forget_session(mosquitto.port, settings.collector.client_id)
    store = open_store(store_url)
    await store.open()
    (reject,) = await store.fetch(RejectRecord)
    assert (reject.reason, reject.payload) == (reasons.BAD_TIMESTAMP, poison.encode())
    assert [(r.ts, r.register) for r in await store.fetch(ReadingPoint)] == [(t0, 5.0)]
    await store.close()


async def test_topics_that_almost_match_reach_the_collector_and_are_rejected(mosquitto, mosquitto_pub, tmp_path):
    registry = tiny_registry(tmp_path / "registry")
    store_url = f"duckdb://{tmp_path / 's.duckdb'}"
    settings = make_settings(mosquitto.port, store_url, tmp_path / "registry")
    body = json.dumps({"ts": int(time.time()) - 60, "value": 1.0})
    topics = {"meterwatch/up/inst-a/a-w1/readings": reasons.UNKNOWN_TOPIC,
              "meterwatch/up/inst-a/a-w1/reading/extra": reasons.UNKNOWN_TOPIC,
              "meterwatch/up/inst-a/reading": reasons.BAD_TOPIC,
              "meterwatch/up/a-w1": reasons.BAD_TOPIC}
    async with running_collector(settings, registry) as collector:
        for topic in topics:
            mosquitto_pub(topic, body)
        assert await eventually(lambda: _acknowledged(collector), len(topics)) == len(topics)
    await forget_session(mosquitto.port, settings.collector.client_id)
    store = open_store(store_url)
    await store.open()
    assert {r.topic: r.reason for r in await store.fetch(RejectRecord)} == topics
    assert await store.count(ReadingPoint) == 0
    await store.close()


def test_stream_truth_marks_every_almost_topic():
    messages, truth = place([Message(0.0, t, b"") for t in ALMOST] + [Valid("reading", 0)], 1_800_000_000)
    assert truth.almost == list(ALMOST) and list(truth.readings.values()) == [10.0 + len(ALMOST)]
    assert json.loads(messages[-1].payload)["value"] == 10.0 + len(ALMOST)
