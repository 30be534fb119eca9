"""``collector.partition``: each topic belongs to exactly one worker, by a hash that never changes."""

from __future__ import annotations

import pytest

from collector.topics import Partition
from meterwatch.settings import CollectorSettings, Settings


def test_the_hash_is_crc32_of_the_device_id():
    # CRC-32 (ISO-HDLC, zlib's) of "123456789" is 0xCBF43926 = 3421780262, the check value in the CRC catalogue
    # (https://reveng.sourceforge.io/crc-catalogue/17plus.htm#crc.cat.crc-32-iso-hdlc): mod 2 is 0, mod 3 is 2
    # (digit sum 35), mod 5 is 2.
    topic = "meterwatch/up/inst-a/123456789/reading"
    assert [Partition(i, 2).owns(topic) for i in range(2)] == [True, False]
    assert [Partition(i, 3).owns(topic) for i in range(3)] == [False, False, True]
    assert [Partition(i, 5).owns(topic) for i in range(5)] == [False, False, True, False, False]


@pytest.mark.parametrize("count", [1, 2, 3, 8])
def test_every_topic_has_exactly_one_owner_and_a_device_keeps_it_whatever_the_suffix(count):
    for k in range(500):
        owners = {suffix: [i for i in range(count) if Partition(i, count).owns(f"meterwatch/up/inst-{k % 7}/d-{k}/{suffix}")]
                  for suffix in ("reading", "frame/dlt645", "readings")}
        assert all(len(o) == 1 for o in owners.values())
        assert len({o[0] for o in owners.values()}) == 1  # one device, one worker: its history is whole


@pytest.mark.parametrize("topic", ["meterwatch/up/inst-a/reading", "meterwatch/up", "meterwatch/up/inst-a/a b/reading",
                                   "elsewhere/x/y/z"])
def test_a_topic_without_a_device_belongs_to_partition_0_so_its_reject_is_kept_once(topic):
    assert [Partition(i, 3).owns(topic) for i in range(3)] == [True, False, False]


def test_the_partition_setting_is_checked():
    assert CollectorSettings(partition="01/3").partition == "1/3"
    for bad in ("3/3", "1", "-1/2", "a/b", "1/0"):
        with pytest.raises(ValueError, match="partition"):
            CollectorSettings(partition=bad)


def test_shared_group_is_refused_with_what_to_do_instead(monkeypatch):
    monkeypatch.setenv("METERWATCH_COLLECTOR__SHARED_GROUP", "meterwatch")
    with pytest.raises(ValueError, match="--workers N"):
        Settings()
