"""Master data as frozen records: what a device, institution and card are."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meterwatch.registry.tariffs import Tariffs


@dataclass(frozen=True, slots=True)
class Institution:
    id: str
    name: str
    city: str
    type: str
    subclass: str
    floor_area_m2: float
    occupants: int


@dataclass(frozen=True, slots=True)
class Device:
    id: str
    institution: str
    kind: str
    unit: str
    multiplier: float
    address: str
    platform_id: str = ""  # the device's id on an NB-IoT platform (CTWing deviceId, OneNET dev_id): HTTP push



@dataclass(frozen=True, slots=True)
class Card:
    card: str
    institution: str
    zone: str
    owner_unit: str
    cleaner: str
    category: str


@dataclass(frozen=True, slots=True)
class Contact:
    """One route of ``contacts.csv``: who hears of which alerts, on which channel.

    ``scope`` is ``province``, ``city``, ``type`` or ``institution`` with ``scope_id`` the city, type or
    institution (empty for the province); ``rules`` empty means every rule; ``quiet`` is (start, end) in
    minutes after local midnight, or None.  The address may carry a robot's access token: never log it.
    """

    id: str
    name: str
    channel: str
    address: str
    scope: str
    scope_id: str
    rules: tuple[str, ...]
    min_severity: str
    quiet: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with one row, said so that an officer can fix the file."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Registry:
    institutions: dict[str, Institution]
    devices: dict[str, Device]
    cards: dict[str, Card]
    quotas: dict[str, Any] = field(default_factory=dict)
    tariffs: Tariffs | None = None  # tariffs.toml, when the registry has one
    budgets: dict[tuple[str, int, str], float] = field(default_factory=dict)  # budgets.csv: (inst, year, kind)
    contacts: dict[str, Contact] = field(default_factory=dict)  # contacts.csv: alert routes, by id
    by_platform_id: dict[str, Device] = field(default_factory=dict)  # devices.csv platform_id -> device

    def __post_init__(self) -> None:
        if not self.by_platform_id:
            self.by_platform_id.update((d.platform_id, d) for d in self.devices.values() if d.platform_id)

    def devices_of(self, kind: str) -> list[Device]:
        return [d for d in self.devices.values() if d.kind == kind]

    def devices_by_address(self, institution: str) -> Mapping[str, Device | None]:
        """The institution's devices by protocol address (upper case); None for an address two of them share."""
        return self._by_address.get(institution, {})

    @cached_property
    def _by_address(self) -> dict[str, dict[str, Device | None]]:
        index: dict[str, dict[str, Device | None]] = {}
        for d in self.devices.values():
            if d.address:
                addresses = index.setdefault(d.institution, {})
                addresses[d.address.upper()] = None if d.address.upper() in addresses else d
        return index
