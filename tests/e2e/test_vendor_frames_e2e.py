"""A gateway's payload of several DL/T 645 frames through a real mosquitto and a real collector into the
store: each frame stored under the device of its address in the topic's institution, each bad frame (or a
frame of another institution's meter) rejected alone with its reason and bytes."""

from __future__ import annotations

import pytest

from collector import reasons
from meterwatch.registry import Device, load_registry
from meterwatch.store import MeterValuePoint, ReadingPoint, RejectRecord, open_store
from simulators.province import Province, write_registry
from tests.collector.test_vendor_frames import (
    CLOU_1997_WILDCARD,
    FOX_1997_9010,
    FOX_2007_A,
    I_BLOCK,
    OTHER_INSTITUTION,
    V_BLOCK,
)
from tests.e2e.conftest import eventually, make_settings, running_collector
from tests.helpers import tiny_province

pytestmark = pytest.mark.servers
TOPIC = "meterwatch/up/inst-a/a-e1/frame/dlt645"


def registry_with_fox_edge_meters(directory):
    """The tiny province, its electricity meter at the address of the fox-edge 1997 capture, a second one
    at the address of the fox-edge 2007 capture, and a meter of inst-b at 000000000009."""
    tiny = tiny_province()
    devices = [Device(d.id, d.institution, d.kind, d.unit, d.multiplier, "351253111111") if d.id == "a-e1" else d
               for d in tiny.devices]
    devices += [Device("a-e2", "inst-a", "electricity", "kWh", 1.0, "000000000001"),
                Device("b-e1", "inst-b", "electricity", "kWh", 1.0, "000000000009")]
    write_registry(Province(tiny.institutions, devices, tiny.cards), directory)
    registry, problems = load_registry(directory)
    assert problems == [] and registry.devices["a-e1"].address == "351253111111"
    return registry


async def test_multi_frame_payload_stores_each_meters_frames_and_rejects_the_rest_alone(
        mosquitto, store_url, mosquitto_pub, tmp_path):
    registry = registry_with_fox_edge_meters(tmp_path / "registry")
    settings = make_settings(mosquitto.port, store_url, tmp_path / "registry")
    payload = "\r\n".join([FOX_1997_9010, V_BLOCK, FOX_2007_A, "12 34 56", I_BLOCK, CLOU_1997_WILDCARD,
                            OTHER_INSTITUTION])
    async with running_collector(settings, registry) as collector:
        mosquitto_pub(TOPIC, payload)
        assert await eventually(lambda: collector.metrics.acknowledged, 1) == 1
    assert collector.metrics.stored == 2 and collector.metrics.messages_by_outcome == {"stored": 1}
    assert collector.metrics.rejected_by_reason == {reasons.ADDRESS_MISMATCH: 2, reasons.BAD_FRAME: 1}
    store = open_store(store_url)
    await store.open()
    try:
        (reading,) = await store.fetch(ReadingPoint, device="a-e1")
        (forwarded,) = await store.fetch(ReadingPoint, device="a-e2")
        other_institution = await store.fetch(ReadingPoint, device="b-e1")
        quantities = {v.quantity: v.value for v in await store.fetch(MeterValuePoint, device="a-e1")}
        rejects = sorted(await store.fetch(RejectRecord), key=lambda r: r.ts_ns)
    finally:
        await store.close()
    assert reading.register == pytest.approx(1343.89 * 40)  # 9010 x the registry multiplier
    assert (forwarded.register, forwarded.institution) == (26.37, "inst-a") and other_institution == []
    assert quantities == {"voltage_a": 220.0, "voltage_b": 221.0, "voltage_c": 219.0,
                          "current_a": 1.5, "current_b": 0.75, "current_c": 10.0}
    assert [(r.reason, r.topic, r.device, r.payload) for r in rejects] == [
        (reasons.BAD_FRAME, TOPIC, "a-e1", b"12 34 56"),
        (reasons.ADDRESS_MISMATCH, TOPIC, "a-e1", CLOU_1997_WILDCARD.encode()),
        (reasons.ADDRESS_MISMATCH, TOPIC, "a-e1", OTHER_INSTITUTION.encode())]
    assert "part 4 of 7" in rejects[0].detail and "wildcard" in rejects[1].detail
    assert "000000000009" in rejects[2].detail
