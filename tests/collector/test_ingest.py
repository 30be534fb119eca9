import json
import logging

import pytest

from collector import reasons
from collector.ingest import Ingestor
from collector.message import Message
from collector.topics import SUBSCRIPTIONS
from meterwatch.settings import CollectorSettings
from tests.helpers import dlt645_energy_frame, tiny_registry

NOW = 1_764_000_000


@pytest.fixture
def ingestor(tmp_path):
    return Ingestor(tiny_registry(tmp_path), CollectorSettings(), clock=lambda: NOW)


def one(ingestor, topic, payload):
    """One message through the pure stages (route, decode, derive)."""
    (message,) = ingestor.process([Message(topic, payload)])
    return message


def reading(ts, value, **extra):
    return json.dumps({"ts": ts, "value": value, **extra}).encode()


def test_reading_stored_with_multiplier_tags_and_consumption(ingestor):
    one(ingestor, "meterwatch/up/inst-a/a-e1/reading", reading(NOW - 1800, 100.0))
    out = one(ingestor, "meterwatch/up/inst-a/a-e1/reading", reading(NOW - 900, 100.5))
    (p,) = out.out.readings
    assert (p.register, p.consumption, p.interval_s) == (4020.0, 20.0, 900)
    assert (p.institution, p.city, p.type, p.kind) == ("inst-a", "yinchuan", "education", "electricity")


@pytest.mark.parametrize("topic, reason", [
    ("meterwatch/up/inst-b/a-w1/reading", reasons.INSTITUTION_MISMATCH),
    ("meterwatch/up/inst-a/ghost/reading", reasons.UNKNOWN_DEVICE),
    ("meterwatch/up/inst-a/a-s1/reading", reasons.KIND_MISMATCH),
    ("meterwatch/up/inst-a/a-w1/weighing", reasons.KIND_MISMATCH),
    ("meterwatch/up/inst-a/a-w1/telemetry", reasons.UNKNOWN_TOPIC),
    ("meterwatch/up/inst a/a-w1/reading", reasons.BAD_TOPIC),
    ("meterwatch/up/inst-a", reasons.BAD_TOPIC),
    ("other/up/inst-a/a-w1/reading", reasons.BAD_TOPIC),
])
def test_untrusted_topics_are_rejected_with_topic_payload_and_reason(ingestor, topic, reason):
    payload = reading(NOW, 1.0)
    out = one(ingestor, topic, payload)
    assert out.out.readings == [] and len(out.out.rejects) == 1
    rej = out.out.rejects[0]
    assert (rej.reason, rej.topic, rej.payload) == (reason, topic, payload)


def test_oversized_payload_rejected_and_truncated(ingestor):
    out = one(ingestor, "meterwatch/up/inst-a/a-w1/reading", b"x" * 300_000)
    assert out.out.rejects[0].reason == reasons.OVERSIZED and len(out.out.rejects[0].payload) == 1024


def test_retry_is_counted_as_duplicate_and_not_rewritten(ingestor):
    body = json.dumps({"readings": [{"ts": NOW - 1800, "value": 1.0}, {"ts": NOW - 900, "value": 2.0}]}).encode()
    first = one(ingestor, "meterwatch/up/inst-a/a-w1/reading", body)
    again = one(ingestor, "meterwatch/up/inst-a/a-w1/reading", body)
    assert len(first.out.readings) == 2 and again.out.readings == [] and again.duplicates == 2


def test_batch_out_of_order_is_sorted_before_deltas(ingestor):
    body = json.dumps({"readings": [{"ts": NOW - 900, "value": 3.0}, {"ts": NOW - 2700, "value": 1.0},
                                    {"ts": NOW - 1800, "value": 2.0}]}).encode()
    out = one(ingestor, "meterwatch/up/inst-a/a-w1/reading", body)
    assert [(p.ts, p.consumption) for p in out.out.readings] == [(NOW - 2700, None), (NOW - 1800, 1.0), (NOW - 900, 1.0)]


def test_conflicting_value_for_same_second_is_rejected(ingestor):
    one(ingestor, "meterwatch/up/inst-a/a-w1/reading", reading(NOW - 900, 1.0))
    out = one(ingestor, "meterwatch/up/inst-a/a-w1/reading", reading(NOW - 900, 9.0))
    assert out.out.readings == [] and out.out.rejects[0].reason == reasons.CONFLICTING_READING


def test_weighing_takes_card_data_and_unknown_card_is_kept_as_unknown(ingestor):
    good = one(ingestor, "meterwatch/up/inst-a/a-s1/weighing",
                            json.dumps({"ts": NOW, "card": "CARD01", "weight_kg": 12.4}).encode())
    (w,) = good.out.weighings
    assert (w.zone, w.category, w.cleaner, w.weight_kg) == ("zone-1", "recyclable", "保洁员甲", 12.4)
    odd = one(ingestor, "meterwatch/up/inst-a/a-s1/weighing",
                           json.dumps({"ts": NOW, "card": "NOPE", "weight_kg": 3}).encode())
    assert odd.out.weighings[0].category == "unknown" and odd.unknown_cards == 1


def test_seeded_history_avoids_a_spike_after_restart(ingestor):
    ingestor.seed({"a-w1": (NOW - 1800, 500.0)})
    out = one(ingestor, "meterwatch/up/inst-a/a-w1/reading", reading(NOW - 900, 501.25))
    assert out.out.readings[0].consumption == 1.25


def test_a_repeated_weighing_is_a_duplicate_and_another_weight_for_it_is_refused(ingestor):
    topic = "meterwatch/up/inst-a/a-s1/weighing"
    first = one(ingestor, topic, json.dumps({"ts": NOW - 60, "card": "CARD01", "weight_kg": 4.5}).encode())
    again = one(ingestor, topic, json.dumps({"ts": NOW - 60, "card": "CARD01", "weight_kg": 4.5}).encode())
    other = one(ingestor, topic, json.dumps({"ts": NOW - 60, "card": "CARD01", "weight_kg": 9.0}).encode())
    assert len(first.out.weighings) == 1 and (len(again.out.weighings), again.duplicates) == (0, 1)
    (r,) = other.out.rejects
    assert other.out.weighings == [] and r.reason == reasons.CONFLICTING_READING and "4.5 kg" in r.detail
    assert json.loads(r.payload) == {"ts": NOW - 60, "card": "CARD01", "weight_kg": 9.0}


class _BrokenDecoder:
    suffix = "reading"
    kinds = frozenset({"water"})

    def decode(self, payload, ctx):
        raise OverflowError("a slip in a decoder")


def test_any_exception_while_handling_a_message_is_a_reject_of_that_message(tmp_path, caplog):
    broken = Ingestor(tiny_registry(tmp_path), CollectorSettings(), clock=lambda: NOW,
                      decoders={"reading": _BrokenDecoder()})
    payload = reading(NOW, 1.0)
    out = one(broken, "meterwatch/up/inst-a/a-w1/reading", payload)
    (rej,) = out.out.rejects
    assert (rej.reason, rej.topic, rej.payload, rej.device) == (reasons.INTERNAL_ERROR,
                                                                "meterwatch/up/inst-a/a-w1/reading", payload, "a-w1")
    assert "OverflowError" in rej.detail and out.out.readings == []
    for _ in range(5):
        one(broken, "meterwatch/up/inst-a/a-w1/reading", payload)
    caplog.clear()
    broken.log_summary.emit()
    (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]  # one traceback for six failures
    assert error.counts == {"OverflowError": 6} and error.exc_info[0] is OverflowError


@pytest.mark.parametrize("topic, reason", [
    ("meterwatch/up/inst-a/a-w1/readings", reasons.UNKNOWN_TOPIC),
    ("meterwatch/up/inst-a/a-w1/reading/extra", reasons.UNKNOWN_TOPIC),
    ("meterwatch/up/inst-a/a-w1", reasons.BAD_TOPIC),
    ("meterwatch/up/inst-a/reading", reasons.BAD_TOPIC),
    ("meterwatch/up", reasons.BAD_TOPIC),
    ("meterwatch/up/inst-a/a-w1\x00/reading", reasons.BAD_TOPIC),
])
def test_topics_that_almost_match_are_rejected(ingestor, topic, reason):
    out = one(ingestor, topic, reading(NOW, 1.0))
    assert [r.reason for r in out.out.rejects] == [reason] and out.out.readings == []


def test_subscriptions_cover_the_whole_up_tree():
    assert SUBSCRIPTIONS == ("meterwatch/up/#",)


def test_a_flood_of_rejects_logs_a_bounded_summary_with_counts_per_reason(ingestor, caplog):
    caplog.set_level(logging.DEBUG)
    for k in range(1000):
        one(ingestor, f"meterwatch/up/inst-a/ghost-{k}/reading", reading(NOW, 1.0))  # unknown_device
        one(ingestor, "meterwatch/up/inst-b/a-w1/reading", reading(NOW, 1.0))  # institution_mismatch
        one(ingestor, "meterwatch/up/inst-a/a-s1/weighing",
                         json.dumps({"ts": NOW - k, "card": f"X{k}", "weight_kg": 3}).encode())  # unknown card
    assert len(caplog.records) == 0  # nothing per message
    lines = ingestor.log_summary.emit()
    assert len(caplog.records) == lines <= 3
    rejected = next(r for r in caplog.records if r.getMessage() == "rejects")
    assert rejected.total == 2000 and rejected.more == 0
    assert rejected.counts == {"unknown_device": 1000, "institution_mismatch": 1000}
    assert rejected.examples["institution_mismatch"] == "meterwatch/up/inst-b/a-w1/reading"
    cards = next(r for r in caplog.records if r.getMessage() == "weighings with unknown cards")
    assert cards.total == 1000 and cards.counts == {"inst-a": 1000} and cards.examples["inst-a"] == "a-s1 card X0"
    caplog.clear()
    assert ingestor.log_summary.emit() == 0 and caplog.records == []  # nothing new: nothing said


def test_a_frame_received_again_soon_with_the_same_register_is_a_duplicate_also_after_a_restart(tmp_path):
    """Frames carry no time: a redelivery (crash before the ack) would be a second reading seconds later."""
    now = [float(NOW)]
    ingestor = Ingestor(tiny_registry(tmp_path), CollectorSettings(frame_repeat_s=300), clock=lambda: now[0])
    topic = "meterwatch/up/inst-a/a-e1/frame/dlt645"
    first = one(ingestor, topic, dlt645_energy_frame("000000000002", 1234.56))
    now[0] += 3  # the broker redelivers it
    again = one(ingestor, topic, dlt645_energy_frame("000000000002", 1234.56))
    assert [p.register for p in first.out.readings] == [pytest.approx(1234.56 * 40)]
    assert (again.out.readings, again.out.values, again.duplicates, again.verdict) == ([], [], 1, "duplicate")
    now[0] += 10  # the meter moved: a new reading, however soon
    moved = one(ingestor, topic, dlt645_energy_frame("000000000002", 1234.60))
    assert [(p.ts, p.consumption) for p in moved.out.readings] == [(NOW + 13, pytest.approx(0.04 * 40))]
    now[0] += 300  # the same register, but frame_repeat_s later: a meter that did not move, read again
    still = one(ingestor, topic, dlt645_energy_frame("000000000002", 1234.60))
    assert [(p.ts, p.consumption) for p in still.out.readings] == [(NOW + 313, 0.0)]
    restarted = Ingestor(tiny_registry(tmp_path / "r2"), CollectorSettings(), clock=lambda: now[0] + 2)
    restarted.seed({"a-e1": (NOW + 313, 1234.60 * 40)})  # what the store holds at start
    redelivered = one(restarted, topic, dlt645_energy_frame("000000000002", 1234.60))
    assert (redelivered.out.readings, redelivered.duplicates) == ([], 1)


def test_json_readings_keep_their_own_times_and_are_never_frame_repeats(ingestor):
    topic = "meterwatch/up/inst-a/a-w1/reading"
    one(ingestor, topic, reading(NOW - 60, 5.0))
    same_value = one(ingestor, topic, reading(NOW - 30, 5.0))
    assert [(p.ts, p.consumption) for p in same_value.out.readings] == [(NOW - 30, 0.0)]
