"""Report scopes: ``province``, ``city:ID`` or ``institution:ID``, resolved against the registry."""

from __future__ import annotations

from dataclasses import dataclass

from meterwatch.registry import Institution, Registry


@dataclass(frozen=True)
class Scope:
    text: str  # as given: province, city:yinchuan, institution:inst-0001
    level: str  # province, city, institution
    key: str  # "" for the province
    name: str  # 全省, the city's or the institution's name
    institutions: list[Institution]  # sorted by id

    @property
    def where(self) -> dict[str, str]:
        """The store filter that keeps the scope's points (pushed down to the store)."""
        return {} if self.level == "province" else {self.level: self.key}


def parse_scope(text: str, registry: Registry, cities: dict[str, str]) -> Scope:
    """The scope's institutions; ValueError naming what is unknown (and what is known)."""
    level, _, key = text.strip().partition(":")
    everyone = sorted(registry.institutions.values(), key=lambda i: i.id)
    if level == "province" and not key:
        return Scope(text, "province", "", "全省", everyone)
    if level == "city" and key:
        if key not in cities:
            raise ValueError(f"unknown city {key!r} in --scope {text!r}: known cities are {', '.join(sorted(cities))}")
        return Scope(text, "city", key, cities[key], [i for i in everyone if i.city == key])
    if level == "institution" and key:
        inst = registry.institutions.get(key)
        if inst is None:
            raise ValueError(f"unknown institution {key!r} in --scope {text!r}: not in the registry")
        return Scope(text, "institution", key, inst.name, [inst])
    raise ValueError(f"bad --scope {text!r}: expected province, city:ID or institution:ID")
