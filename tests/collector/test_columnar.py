"""The columnar path (msgspec columns, ``DeviceHistory.extend``) against the per-reading path it replaces.

Equivalence is the test: the same random message sequences (good batches,
bad items, duplicates and conflicts, late and out-of-order readings,
rollovers, replacements, dips, jumps, resent messages) go through an
ingestor with the columnar JSON decoder and one without it, and every
message must come out the same: stored readings (time, register,
consumption, interval, flag), rejects (reason, detail, payload),
duplicates, late readings, register flags; and each device's history ends
in the same state.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import reasons
from collector.decoders import DECODERS, DecodeContext
from collector.decoders.reading_json import JsonReadingDecoder, decode_columns
from collector.deltas import DeviceHistory
from collector.ingest import Ingestor
from collector.message import Message
from meterwatch.settings import CollectorSettings
from tests.helpers import tiny_registry

NOW = 1_764_000_000
DEVICES = {"a-e1": "kWh", "a-w1": "m3"}  # 40x multiplier, and 1x
EVENTS = ["normal"] * 8 + ["zero", "jump", "dip", "rollover", "reset", "bad_value", "bad_ts", "future", "unit",
                           "repeat", "conflict", "late", "text_ts", "float_ts", "seq_text"]
CALM = ["normal"] * 40 + ["zero", "jump"]  # an ordinary upload: the columnar path's own case


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    return tiny_registry(tmp_path_factory.mktemp("registry"))


def ingestors(registry, columns: bool = True) -> tuple[Ingestor, Ingestor]:
    """(the per-reading reference, the columnar path keeping readings as columns as the collector does)."""
    per_reading = {**DECODERS, "reading": JsonReadingDecoder(columnar=False)}
    return (Ingestor(registry, CollectorSettings(), clock=lambda: NOW, decoders=per_reading),
            Ingestor(registry, CollectorSettings(), clock=lambda: NOW, columns=columns))


def items_of(data: st.DataObject, state: dict[str, float], unit: str) -> list[dict]:
    """One message's items, moving the device's (ts, value) on like a meter, with trouble mixed in."""
    items: list[dict] = []
    events = data.draw(st.sampled_from([EVENTS, CALM, CALM]))
    for _ in range(data.draw(st.sampled_from([1, 2, 4, 4, 8, 30, 96]))):
        event = data.draw(st.sampled_from(events))
        if event in ("normal", "zero", "jump", "dip", "rollover", "reset"):
            state["ts"] += 900
            if event == "normal":
                state["value"] += data.draw(st.floats(0.01, 5.0))
            elif event == "jump":
                state["value"] += 20_000.0
            elif event == "rollover":
                items.append({"ts": state["ts"], "value": 99_990.0})
                state["ts"] += 900
                state["value"] = data.draw(st.floats(0.0, 50.0))
            elif event == "reset":
                state["value"] = state["value"] * 0.2
            value = state["value"] * 0.95 if event == "dip" else state["value"]
            items.append({"ts": int(state["ts"]), "value": value})
        elif event == "bad_value":
            items.append({"ts": int(state["ts"]) + 1, "value": data.draw(st.sampled_from([-1.0, "12", None, True]))})
        elif event == "bad_ts":
            items.append({"ts": data.draw(st.sampled_from([100, -5, "yesterday", 10**30])), "value": 1.0})
        elif event == "future":
            items.append({"ts": NOW + 7 * 86_400, "value": state["value"]})
        elif event == "unit":
            items.append({"ts": int(state["ts"]) + 7, "value": state["value"],
                          "unit": data.draw(st.sampled_from([unit, "GJ"]))})
        elif event in ("repeat", "conflict") and items:
            again = dict(items[-1])
            if event == "conflict" and isinstance(again.get("value"), float):
                again["value"] += 1.0
            items.append(again)
        elif event == "late":
            items.append({"ts": int(state["ts"]) - 900 * data.draw(st.integers(1, 300)) - 450,
                          "value": max(0.0, state["value"] - 3.0)})
        elif event == "text_ts":
            state["ts"] += 900
            items.append({"ts": f"{np.datetime64(int(state['ts']), 's')}Z", "value": state["value"]})
        elif event == "float_ts":
            state["ts"] += 900
            items.append({"ts": state["ts"] + 0.5, "value": state["value"]})
        elif event == "seq_text":
            state["ts"] += 900
            items.append({"ts": int(state["ts"]), "value": state["value"], "seq": "7"})
    if data.draw(st.booleans()):
        items = data.draw(st.permutations(items))
    return items


def outcome(m: Message) -> tuple:
    readings = m.out.expanded().readings  # columns as points, before the rows: the order stores write them in
    return ([(p.device, p.ts, p.register, p.consumption, p.interval_s, p.flag) for p in readings],
            [(r.reason, r.detail, r.payload, r.topic, r.device) for r in m.out.rejects],
            m.duplicates, [(p.ts, p.register) for p in m.late], dict(m.flags), m.verdict)


def history_state(h: DeviceHistory) -> tuple:
    return (list(h.ts), list(h.register), h.known_from, h._bad, h._jumps, h._median, h._median_due)  # noqa: SLF001


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_columnar_path_comes_out_exactly_as_the_per_reading_path(registry, data) -> None:
    per_reading, columnar = ingestors(registry)
    state = {d: {"ts": float(NOW - 900 * 20_000), "value": data.draw(st.floats(0.0, 1000.0))} for d in DEVICES}
    sent: list[Message] = []
    for _ in range(data.draw(st.integers(1, 25))):
        if sent and data.draw(st.integers(0, 9)) == 0:
            topic, payload = data.draw(st.sampled_from([(m.topic, m.payload) for m in sent]))  # resent whole
        else:
            device = data.draw(st.sampled_from(sorted(DEVICES)))
            items = items_of(data, state[device], DEVICES[device])
            body = items[0] if len(items) == 1 and data.draw(st.booleans()) else {"readings": items}
            topic, payload = f"meterwatch/up/inst-a/{device}/reading", json.dumps(body).encode()
        sent.append(Message(topic, payload))
        old, new = Message(topic, payload), Message(topic, payload)
        per_reading.process([old])
        columnar.process([new])
        assert outcome(new) == outcome(old), payload
    for device in DEVICES:
        assert columnar.histories.keys() == per_reading.histories.keys()
        if device in columnar.histories:
            assert history_state(columnar.histories[device]) == history_state(per_reading.histories[device])


@pytest.mark.parametrize("columns", [False, True])
def test_columnar_path_takes_an_ordinary_batch_and_computes_consumption(registry, columns) -> None:
    """A day's batch of a 40x meter, by hand: consumption = 40 x the rise, the first reading of a device has none."""
    _, ingestor = ingestors(registry, columns)
    items = [{"ts": NOW - 900 * (96 - k), "value": 100.0 + 0.25 * k} for k in range(96)]
    (m,) = ingestor.process([Message("meterwatch/up/inst-a/a-e1/reading", json.dumps({"readings": items}).encode())])
    assert m.decoded is not None and m.decoded.columns is not None  # the columnar path, not the fallback
    assert len(m.out.reading_columns) == (1 if columns else 0) and m.verdict == "stored"
    readings = m.out.expanded().readings
    first, second, last = readings[0], readings[1], readings[-1]
    assert (first.register, first.consumption, first.interval_s) == (4000.0, None, None)
    assert (second.register, second.consumption, second.interval_s) == (4010.0, 10.0, 900)
    assert (last.ts, last.register) == (NOW - 900, 40 * (100.0 + 0.25 * 95))
    assert len(readings) == 96 and m.out.rejects == [] and m.duplicates == 0


def test_a_bad_item_sends_the_batch_item_by_item_and_only_it_is_rejected(registry) -> None:
    _, ingestor = ingestors(registry)
    items = [{"ts": NOW - 1800, "value": 1.0}, {"ts": NOW - 900, "value": -2.0}, {"ts": NOW, "value": 3.0}]
    (m,) = ingestor.process([Message("meterwatch/up/inst-a/a-w1/reading", json.dumps({"readings": items}).encode())])
    assert [(p.ts, p.consumption) for p in m.out.readings] == [(NOW - 1800, None), (NOW, 2.0)]
    (bad,) = m.out.rejects
    assert bad.reason == reasons.BAD_VALUE and bad.detail.startswith("readings[1]: value")
    assert json.loads(bad.payload) == items[1]


@pytest.mark.parametrize("payload", [
    b'{"readings": [{"ts": 1764000000, "value": NaN}]}',  # Python's json takes NaN; it is refused as malformed
    b'{"readings": [{"ts": 1764000000, "value": 1e400}]}',
    b'{"readings": []}',
    b'{"ts": 1764000000, "value": 1.0}',  # a single reading: the per-item path
    b'{"readings": [{"ts": 1764000000.5, "value": 1.0}]}',
    b'{"readings": [{"ts": 100000000000000000000000000000, "value": 1.0}]}',
    b'\xef\xbb\xbf{"readings": [{"ts": 1764000000, "value": 1.0}]}',
    b'{"readings": [{"ts": 1764000000, "value": 1.0, "unit": "GJ"}]}',
    b'{"readings": [{"ts": 1764000000, "value": 1.0, "\\u0075nit": "GJ"}]}',  # the key spelled with an escape
])
def test_what_the_columnar_decoder_does_not_take_is_left_to_the_per_item_path(registry, payload) -> None:
    ctx = DecodeContext(registry.devices["a-w1"], NOW, 3600, 2000)
    assert decode_columns(payload, ctx) is None


@pytest.mark.parametrize("extra", [b'"unit": "m3"', b'"seq": 7', b'"rssi": -71', b'"\\u0075nit": "m3"'])
def test_items_carrying_more_than_a_time_and_a_value_still_decode_as_columns(registry, extra) -> None:
    """Bare items are tried first; a batch whose items carry a seq, the device's own unit (its key spelled with
    an escape too) or a key nobody reads is decoded with those fields and still taken whole."""
    ctx = DecodeContext(registry.devices["a-w1"], NOW, 3600, 2000)
    payload = b'{"readings": [{"ts": %d, "value": 1.5, %s}, {"ts": %d, "value": 2.25}]}' % (NOW - 900, extra, NOW)
    columns = decode_columns(payload, ctx)
    assert columns is not None and columns.ts.tolist() == [NOW - 900, NOW] and columns.value.tolist() == [1.5, 2.25]


def next_upload(state: dict[str, float], count: int, rate: float, jump_at: int | None) -> list[dict]:
    """A meter's next upload: ``count`` quarter-hours rising by about ``rate``; at ``jump_at``, 300 times as much."""
    items = []
    for k in range(count):
        state["ts"] += 900
        state["value"] += rate * (300.0 if k == jump_at else 1.0 + 0.01 * k)
        items.append({"ts": int(state["ts"]), "value": state["value"]})
    return items


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_flush_derived_at_once_comes_out_exactly_as_message_after_message(registry, data) -> None:
    """The collector derives a whole flush at once (``deltas.extend_all``); the reference takes one message at a
    time, reading by reading.  Flushes of any size, a device several times in one, odd readings among them, and
    meters whose rates differ far more than the jump factor, so a batch judged by another's median would show."""
    per_reading, columnar = ingestors(registry)
    devices = {**DEVICES, "b-w1": "m3"}
    rates = {"a-w1": 0.25, "a-e1": 0.02, "b-w1": 500.0}
    topics = {"a-e1": "inst-a", "a-w1": "inst-a", "b-w1": "inst-b"}
    state = {d: {"ts": float(NOW - 900 * 20_000), "value": data.draw(st.floats(0.0, 1000.0))} for d in devices}
    for _ in range(data.draw(st.integers(1, 8))):
        flush = []
        for _ in range(data.draw(st.integers(1, 12))):
            device = data.draw(st.sampled_from(sorted(devices)))
            if data.draw(st.integers(0, 3)) == 0:
                items = items_of(data, state[device], devices[device])
            else:
                count = data.draw(st.sampled_from([1, 4, 4, 4, 20]))
                jump_at = data.draw(st.one_of(st.none(), st.none(), st.integers(0, count - 1)))
                items = next_upload(state[device], count, rates[device], jump_at)
            flush.append((f"meterwatch/up/{topics[device]}/{device}/reading", json.dumps({"readings": items}).encode()))
        old = [Message(topic, payload) for topic, payload in flush]
        new = [Message(topic, payload) for topic, payload in flush]
        for m in old:
            per_reading.process([m])
        columnar.process(new)
        assert [outcome(m) for m in new] == [outcome(m) for m in old]
    for device in devices:
        assert columnar.histories.keys() == per_reading.histories.keys()
        if device in columnar.histories:
            assert history_state(columnar.histories[device]) == history_state(per_reading.histories[device])
