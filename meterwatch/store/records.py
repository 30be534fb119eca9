"""The records meterwatch stores, and the schema that tells each backend how.

A ``Schema`` names the measurement (InfluxDB) / table (DuckDB), which
attributes are tags, which are fields and of what type, and which
attributes identify a point.  Backends are written once against schemas,
not once per record type, so adding a measurement is adding a record class
and its schema here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

FieldType = Literal["str", "float", "int", "bytes"]


@dataclass(frozen=True)
class Schema:
    measurement: str
    tags: tuple[str, ...]
    fields: tuple[tuple[str, FieldType], ...]
    key: tuple[str, ...]
    time_attr: str = "ts"
    time_unit: Literal["s", "ns"] = "s"
    count_field: str = ""



class Record(Protocol):
    """What a store keeps: a frozen dataclass whose class carries its ``Schema``.

    Backends take ``type[Record]`` and read everything they need (measurement,
    tags, fields, key, time) from ``schema``; the dataclass fields are the
    attributes, in order.
    """

    schema: ClassVar[Schema]
    __dataclass_fields__: ClassVar[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ReadingPoint:
    """One meter register value: register is after the multiplier, in the device's unit."""

    device: str
    institution: str
    city: str
    type: str
    kind: str
    ts: int
    register: float
    consumption: float | None = None
    interval_s: int | None = None
    flag: str | None = None  # rollover, replacement, bad_reading, jump (collector.registers)
    source: str | None = None  # the file it was imported from (``meterwatch import``); None when live

    schema: ClassVar[Schema] = Schema(
        "reading", ("institution", "city", "type", "kind", "device"),
        (("register", "float"), ("consumption", "float"), ("interval_s", "int"), ("flag", "str"),
         ("source", "str")),
        key=("device", "ts"), count_field="register",
    )


@dataclass(frozen=True, slots=True, eq=False)
class ReadingColumns:
    """Readings of one device as columns, as the collector's columnar ingest makes them (issue 18).

    The same records as ``ReadingPoint`` (one per row, ``flag`` and
    ``source`` None), without an object per reading: InfluxDB gets line
    protocol built from the columns, DuckDB an Arrow table.  Times are
    strictly increasing and newer than anything else of the device in the
    same batch except rewrites, which is why a batch writes its columns
    before its ``readings`` (``Batch.groups``): a rewrite comes last and wins.
    """

    device: str
    institution: str
    city: str
    type: str
    kind: str
    ts: np.ndarray  # int64 Unix seconds
    register: np.ndarray  # float64
    consumption: np.ndarray  # float64; NaN: none
    interval_s: np.ndarray  # int64; -1: none

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def tags(self) -> tuple[str, str, str, str, str]:
        """In ``ReadingPoint.schema.tags`` order."""
        return self.institution, self.city, self.type, self.kind, self.device

    def points(self) -> list[ReadingPoint]:
        head = (self.device, self.institution, self.city, self.type, self.kind)
        return [ReadingPoint(*head, ts, register, None if consumption != consumption else consumption,
                             None if interval_s < 0 else interval_s)
                for ts, register, consumption, interval_s in zip(
                    self.ts.tolist(), self.register.tolist(), self.consumption.tolist(), self.interval_s.tolist(),
                    strict=True)]


@dataclass(frozen=True, slots=True)
class WeighingPoint:
    """One weighing, with the card's registry data copied in at ingest time.

    Identity, in both backends: scale, second and card (DuckDB's key; in
    InfluxDB a point is its tags and time).  So ``scale`` and ``card`` are
    tags beyond the contract's minimum: two cards weighing on one scale in
    the same second, even two unknown cards whose registry tags are all
    ``unknown``, stay two points, and a redelivered weighing overwrites its
    own point.  ``owner_unit`` and ``cleaner`` are tags, not fields as the
    contract first listed them: the garbage dashboard groups by them, and
    InfluxQL can only GROUP BY tags.  A card fixes zone, category, owner
    unit and cleaner, so the series are one per card and scale (~30,000
    cards province-wide); only unknown cards add series of their own.
    """

    scale: str
    institution: str
    city: str
    zone: str
    category: str
    ts: int
    weight_kg: float
    card: str
    cleaner: str
    owner_unit: str

    schema: ClassVar[Schema] = Schema(
        "weighing", ("institution", "city", "zone", "category", "scale", "owner_unit", "cleaner", "card"),
        (("weight_kg", "float"),),
        key=("scale", "ts", "card"), count_field="weight_kg",
    )


@dataclass(frozen=True, slots=True)
class MeterValuePoint:
    """A quantity a binary frame carried besides the register: voltage, tariff register, valve...

    Long format (one point per quantity) so that both backends keep one fixed
    schema whatever a meter reports; beyond the contract's minimum.
    """

    device: str
    institution: str
    quantity: str
    ts: int
    value: float

    schema: ClassVar[Schema] = Schema(
        "meter_value", ("institution", "device", "quantity"), (("value", "float"),),
        key=("device", "quantity", "ts"), count_field="value",
    )


@dataclass(frozen=True, slots=True)
class AlertPoint:
    """One alert event (open / update / resolved / acknowledged) as published."""

    id: str
    ts: int
    state: str
    institution: str
    device: str
    rule: str
    severity: str
    message: str
    message_en: str
    value: float
    unit: str
    since: int
    age_s: int = 0  # ts - since: InfluxQL cannot subtract a field from time, and dashboards chart time to resolve

    schema: ClassVar[Schema] = Schema(
        "alert", ("institution", "device", "rule", "severity"),
        (("state", "str"), ("message", "str"), ("message_en", "str"), ("value", "float"),
         ("unit", "str"), ("since", "int"), ("id", "str"), ("age_s", "int")),
        key=("id", "ts", "state"), count_field="state",
    )


@dataclass(frozen=True, slots=True)
class StatisticPoint:
    """An institution's year-to-date intensity and rank for one indicator, as of one evaluation."""

    institution: str
    city: str
    type: str
    indicator: str  # water, electricity, energy
    ts: int
    use: float
    per_capita: float | None
    per_m2: float | None
    rank_type: int | None  # per m2, 1 = lowest use
    rank_type_city: int | None
    rank_type_capita: int | None  # per capita
    rank_type_city_capita: int | None
    yoy: float | None
    flag: str | None
    # Where it stands against its quota (None without a usable quota):
    quota_constraint: float | None = None  # for the whole year
    quota_guide: float | None = None
    quota_prorated: float | None = None  # the constraint's share of the year so far (seasonal profile)
    projected: float | None = None  # year-end projection
    quota_status: str | None = None  # guide / between / over
    crossing: str | None = None  # date the constraint is expected to be passed
    name: str = ""  # the institution's Chinese name: a tag, so dashboards can list and rank by name
    cost_yuan: float | None = None  # priced use so far this year (water; electricity; energy = electricity + heat)
    kgco2e: float | None = None  # the same use's emissions

    schema: ClassVar[Schema] = Schema(
        "statistic", ("institution", "city", "type", "indicator", "name"),
        (("use", "float"), ("per_capita", "float"), ("per_m2", "float"), ("rank_type", "int"),
         ("rank_type_city", "int"), ("rank_type_capita", "int"), ("rank_type_city_capita", "int"),
         ("yoy", "float"), ("flag", "str"), ("quota_constraint", "float"), ("quota_guide", "float"),
         ("quota_prorated", "float"), ("projected", "float"), ("quota_status", "str"), ("crossing", "str"),
         ("cost_yuan", "float"), ("kgco2e", "float")),
        key=("institution", "indicator", "ts"), count_field="use",
    )


@dataclass(frozen=True, slots=True)
class CostPoint:
    """What one institution's use of one kind cost on one local day: analytics prices each day once.

    Electricity carries its kWh per time-of-use band.  ``yuan`` is None where
    no tariff was in force; ``tariff`` fingerprints the tariffs it was priced
    with, so a changed ``tariffs.toml`` re-prices history.
    """

    institution: str
    city: str
    type: str
    kind: str  # electricity, water, heat
    ts: int  # local midnight starting the day
    quantity: float  # kWh, m3 or GJ
    yuan: float | None
    kgco2e: float | None = None
    sharp_kwh: float | None = None
    peak_kwh: float | None = None
    flat_kwh: float | None = None
    valley_kwh: float | None = None
    method: str = "profile"  # profile (stored consumption), registers (DL/T 645 tariff registers), area
    tariff: str = ""

    schema: ClassVar[Schema] = Schema(
        "cost", ("institution", "city", "type", "kind"),
        (("quantity", "float"), ("yuan", "float"), ("kgco2e", "float"), ("sharp_kwh", "float"),
         ("peak_kwh", "float"), ("flat_kwh", "float"), ("valley_kwh", "float"), ("method", "str"),
         ("tariff", "str")),
        key=("institution", "kind", "ts"), count_field="quantity",
    )


@dataclass(frozen=True, slots=True)
class BillPoint:
    """One utility bill: what an institution was billed for one kind over one local month (``meterwatch import``).

    Identity: institution, kind and month, so importing a bill again overwrites it.
    """

    institution: str
    city: str
    type: str
    kind: str  # electricity, water, heat
    ts: int  # local midnight starting the month
    quantity: float  # kWh, m3 or GJ
    yuan: float | None
    source: str  # the file it was imported from

    schema: ClassVar[Schema] = Schema(
        "bill", ("institution", "city", "type", "kind"),
        (("quantity", "float"), ("yuan", "float"), ("source", "str")),
        key=("institution", "kind", "ts"), count_field="quantity",
    )


@dataclass(frozen=True, slots=True)
class PricedDay:
    """The cost ledger: this local day was priced with these tariffs (so that empty days are not priced again)."""

    ts: int  # local midnight starting the day
    tariff: str
    points: int

    schema: ClassVar[Schema] = Schema("cost_ledger", (), (("tariff", "str"), ("points", "int")), key=("ts",),
                                      count_field="points")


@dataclass(frozen=True, slots=True)
class RejectRecord:
    """A message (or one reading of a batch) refused, kept whole with its reason.

    Nanosecond time keeps two rejects of the same second apart in InfluxDB,
    where a point is identified by its tags and time.
    """

    ts_ns: int
    reason: str
    topic: str
    payload: bytes
    detail: str
    institution: str = ""
    device: str = ""

    schema: ClassVar[Schema] = Schema(
        "reject", ("reason", "institution"),
        (("topic", "str"), ("payload", "bytes"), ("detail", "str"), ("device", "str")),
        key=("ts_ns",), time_attr="ts_ns", time_unit="ns", count_field="topic",
    )


@dataclass(frozen=True, slots=True)
class CollectorSample:
    """The collector's own counters (totals since start) at one moment."""

    instance: str
    ts: int
    received: int
    stored: int
    rejected: int
    duplicates: int
    spooled: int
    spool_bytes: int
    lag: float
    write_ms: float
    idle_s: float  # seconds since the last message arrived
    connected: int  # 1 while the MQTT session is up

    schema: ClassVar[Schema] = Schema(
        "collector", ("instance",),
        (("received", "int"), ("stored", "int"), ("rejected", "int"), ("duplicates", "int"),
         ("spooled", "int"), ("spool_bytes", "int"), ("lag", "float"), ("write_ms", "float"),
         ("idle_s", "float"), ("connected", "int")),
        key=("instance", "ts"), count_field="received",
    )


def attr_names(record_type: type[Record]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(record_type))


@dataclass(frozen=True, slots=True)
class DeliveryPoint:
    """One attempt to deliver a digest to a contact (``analytics.sender``): sent, or failed and why.

    Time in nanoseconds: a point is its tags and time, and one contact may get two outcomes in a second.
    """

    channel: str
    contact: str
    outcome: str  # sent, failed (retried later) or abandoned (given up: permanent refusal, or too many attempts)
    ts_ns: int
    message: str  # the message's id
    alerts: str  # the ids of the alerts it carried, joined by ","
    detail: str = ""  # why it failed (redacted: no token, no secret)
    attempts: int = 1

    schema: ClassVar[Schema] = Schema(
        "delivery", ("channel", "contact", "outcome"),
        (("message", "str"), ("alerts", "str"), ("detail", "str"), ("attempts", "int")),
        key=("contact", "ts_ns", "outcome"), time_attr="ts_ns", time_unit="ns", count_field="message",
    )


@dataclass(frozen=True, slots=True)
class ChangeMark:
    """A write that reached back into days gone by: of which record, how far back, how many points.

    The stores leave one with each write holding readings older than a
    day (``meterwatch.store.changes``), after the points themselves,
    whoever wrote them: the collector (late data, a device's cache), an
    import, a replay.  Analytics keeps the sums of settled days (the year so
    far, last year's profiles) and sums them again when a mark it has not
    seen reaches back into them: a read of a few marks, where counting the
    year's readings each evaluation is billions of points at 50,100
    institutions.
    """

    record: str  # of the points: reading
    ts_ns: int  # when written (the writer's clock)
    oldest: int  # the oldest point's time, Unix seconds
    points: int  # points older than a day in the write

    schema: ClassVar[Schema] = Schema("change", ("record",), (("oldest", "int"), ("points", "int")),
                                      key=("record", "ts_ns"), time_attr="ts_ns", time_unit="ns",
                                      count_field="points")


@dataclass
class Batch:
    """What one write carries: any mix of record types, written together."""

    readings: list[ReadingPoint] = field(default_factory=list)
    weighings: list[WeighingPoint] = field(default_factory=list)
    values: list[MeterValuePoint] = field(default_factory=list)
    alerts: list[AlertPoint] = field(default_factory=list)
    rejects: list[RejectRecord] = field(default_factory=list)
    metrics: list[CollectorSample] = field(default_factory=list)
    statistics: list[StatisticPoint] = field(default_factory=list)
    costs: list[CostPoint] = field(default_factory=list)
    ledger: list[PricedDay] = field(default_factory=list)
    deliveries: list[DeliveryPoint] = field(default_factory=list)
    bills: list[BillPoint] = field(default_factory=list)
    reading_columns: list[ReadingColumns] = field(default_factory=list)  # more readings, as columns: written first
    changes: list[ChangeMark] = field(default_factory=list)  # left by the store's write (``store.changes``)

    def groups(self) -> list[tuple[type[Record], list[Any]]]:
        """(record type, its records) for each type the batch holds, in ``BATCH_LISTS`` order.

        Readings held as columns come as points, before ``readings``.  A
        store that writes columns as such uses ``row_groups`` and
        ``reading_columns``, in that order of precedence.
        """
        return self.expanded().row_groups()

    def row_groups(self) -> list[tuple[type[Record], list[Any]]]:
        """``groups`` without the readings held as columns."""
        return [(t, rows) for t, name in BATCH_LISTS.items() if (rows := getattr(self, name))]

    def _column_points(self) -> list[ReadingPoint]:
        return [p for block in self.reading_columns for p in block.points()]

    def expanded(self) -> Batch:
        """The same records, readings held as columns turned into points (bisection, dead letters)."""
        if not self.reading_columns:
            return self
        out = Batch(**{name: list(getattr(self, name)) for name in BATCH_LISTS.values()})
        out.readings = self._column_points() + out.readings
        return out

    def reading_count(self) -> int:
        return len(self.readings) + sum(len(block) for block in self.reading_columns)

    def rows_of(self, record_type: type[Record]) -> list[Any]:
        """The list of ``record_type`` records in this batch (to append to)."""
        return getattr(self, BATCH_LISTS[record_type])

    def __len__(self) -> int:
        return sum(len(rows) for _, rows in self.row_groups()) + sum(len(block) for block in self.reading_columns)


# Which list of a Batch holds which record type: the one table of stored types (the DuckDB tables, the spool's
# codec and the stores' writes all follow it, in this order).
BATCH_LISTS: dict[type[Record], str] = {
    ReadingPoint: "readings", WeighingPoint: "weighings", MeterValuePoint: "values", AlertPoint: "alerts",
    RejectRecord: "rejects", CollectorSample: "metrics", StatisticPoint: "statistics", CostPoint: "costs",
    PricedDay: "ledger", DeliveryPoint: "deliveries", BillPoint: "bills", ChangeMark: "changes",
}
RECORD_TYPES: tuple[type[Record], ...] = tuple(BATCH_LISTS)
