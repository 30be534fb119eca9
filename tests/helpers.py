"""Small hand-built registries for tests."""

from __future__ import annotations

from pathlib import Path

from meterwatch.registry import Card, Device, Institution, Registry, load_registry
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
