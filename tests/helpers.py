"""Small hand-built registries for tests."""

from __future__ import annotations

from pathlib import Path

from meterwatch.registry import Card, Device, Institution, Registry, load_registry
from meterwatch.store import open_store
from simulators.province import Province, write_registry


def tiny_province() -> Province:
    institutions = [Institution("inst-a", "银川市第1中学", "yinchuan", "education", "secondary", 9000.0, 800),
                    Institution("inst-b", "吴忠市1号政务楼", "wuzhong", "office", "bureau", 4000.0, 150)]
    devices = [Device("a-w1", "inst-a", "water", "m3", 1.0, "00000000000001"),
               Device("a-e1", "inst-a", "electricity", "kWh", 40.0, "000000000002"),
               Device("a-s1", "inst-a", "scale", "kg", 1.0, ""),
               Device("b-w1", "inst-b", "water", "m3", 1.0, "00000000000003")]
    cards = [Card("CARD01", "inst-a", "zone-1", "银川市第1中学", "保洁员甲", "recyclable")]
    return Province(institutions, devices, cards)


def tiny_registry(tmp: Path) -> Registry:
    write_registry(tiny_province(), tmp)
    registry, problems = load_registry(tmp)
    assert problems == []
    return registry


def _bcd_le(value: float, decimals: int, size: int) -> bytes:
    digits = f"{round(value * 10 ** decimals):0{size * 2}d}"
    return bytes(int(digits[i:i + 2], 16) for i in range(0, size * 2, 2))[::-1]


def _with_checksum(body: bytes) -> bytes:
    return body + bytes([sum(body) & 0xFF, 0x16])


def dlt645_energy_frame(address: str, kwh: float) -> bytes:
    """A DL/T 645-2007 response carrying forward active total energy (DI 00010000)."""
    wire = bytes(int(address[i:i + 2], 16) for i in range(0, 12, 2))[::-1]
    data = bytes([0x00, 0x00, 0x01, 0x00]) + _bcd_le(kwh, 2, 4)
    return b"\xfe\xfe" + _with_checksum(b"\x68" + wire + b"\x68\x91" + bytes([len(data)])
                                        + bytes((b + 0x33) & 0xFF for b in data))


def cjt188_water_frame(address: str, m3: float) -> bytes:
    """A CJ/T 188-2004 901F reply of a cold-water meter (unit m3, clock 2025-01-01 00:00:00)."""
    wire = bytes(int(address[i:i + 2], 16) for i in range(0, 14, 2))[::-1]
    data = (b"\x1f\x90\x00" + _bcd_le(m3, 2, 4) + b"\x2c" + _bcd_le(m3, 2, 4) + b"\x2c"
            + bytes.fromhex("00 00 00 01 01 25 20") + b"\x00\x00")
    return _with_checksum(b"\x68\x10" + wire + b"\x81" + bytes([len(data)]) + data)


async def fetch_all(url: str, record_type: type) -> list:
    """Every record of a type in the store at ``url``, opened and closed around the read."""
    store = open_store(url)
    try:
        await store.open()
        return await store.fetch(record_type)
    finally:
        await store.close()
