"""Daily rollups in InfluxDB, so that a year on a dashboard reads thousands of points, not a billion.

A province writes ~2.3 million readings a day; "this year by city" over
raw readings would scan 800 million points.  The panels that span months
read these rollups instead, each one day per series, days starting at the
province's local midnight:

- ``consumption_1d``: per device (an institution's daily and monthly bars);
- ``consumption_city_1d``: per city, type and kind (the province overview),
  summed from ``consumption_1d``, not from raw readings;
- ``weighing_city_1d``: garbage per city and category.

InfluxDB keeps them current with continuous queries that recompute the
last two days every 15 minutes (so readings a gateway uploads late, up to
two days, are counted); ``apply`` runs the same SELECT ... INTO over any
past range (history after a backfill, or after a longer outage).  The
statements are the same text both ways.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from meterwatch.localtime import DAY, LOCAL_UTC_OFFSET_S, local_midnight
from meterwatch.store.influx import InfluxStore, quote_ident

log = logging.getLogger(__name__)

RESAMPLE = "RESAMPLE EVERY 15m FOR 2d"
CHUNK_DAYS = 7  # SELECT ... INTO over a week at a time: bounded memory in influxd


@dataclass(frozen=True)
class Rollup:
    name: str  # the measurement written
    source: str
    select: str  # aggregate expressions with their aliases
    by: tuple[str, ...]

    def statement(self, where: str = "") -> str:
        group = ", ".join(quote_ident(t) for t in self.by)
        return (f"SELECT {self.select} INTO {quote_ident(self.name)} FROM {quote_ident(self.source)}"
                f"{' WHERE ' + where if where else ''} GROUP BY time(1d, {-LOCAL_UTC_OFFSET_S}s), {group}")

    def continuous_query(self, database: str) -> str:
        return (f"CREATE CONTINUOUS QUERY {quote_ident('cq_' + self.name)} ON {quote_ident(database)} "
                f"{RESAMPLE} BEGIN {self.statement()} END")


CONSUMPTION_1D = Rollup("consumption_1d", "reading",
                        'sum("consumption") AS "consumption", count("register") AS "readings"',
                        ("institution", "city", "type", "kind", "device"))
ROLLUPS: tuple[Rollup, ...] = (
    CONSUMPTION_1D,
    Rollup("consumption_city_1d", "consumption_1d",
           'sum("consumption") AS "consumption", sum("readings") AS "readings"', ("city", "type", "kind")),
    Rollup("weighing_city_1d", "weighing", 'sum("weight_kg") AS "weight_kg", count("weight_kg") AS "weighings"',
           ("city", "category")),
)


async def install(store: InfluxStore) -> list[str]:
    """Create the continuous queries (replacing any of the same name with different text); their names."""
    existing: dict[str, str] = {}
    for series in await store.query("SHOW CONTINUOUS QUERIES", database=False):
        if series.get("name") == store.database:
            existing.update({name: text for name, text in series.get("values", [])})
    names = []
    for rollup in ROLLUPS:
        name = "cq_" + rollup.name
        names.append(name)
        if name in existing:
            await store.query(f"DROP CONTINUOUS QUERY {quote_ident(name)} ON {quote_ident(store.database)}",
                              method="POST", database=False)
        await store.query(rollup.continuous_query(store.database), method="POST", database=False)
    return names


async def apply(store: InfluxStore, start: int, end: int) -> int:
    """Compute every rollup for the local days touching [start, end); points written."""
    first, total = local_midnight(start), 0
    for rollup in ROLLUPS:  # in order: consumption_city_1d reads consumption_1d
        written = 0
        for lo in range(first, end, CHUNK_DAYS * DAY):
            hi = min(lo + CHUNK_DAYS * DAY, local_midnight(end - 1) + DAY)
            series = await store.query(rollup.statement(f"time >= {lo}s AND time < {hi}s"), method="POST")
            written += sum(int(v[1]) for s in series for v in s.get("values", []))
        log.info("rollup", extra={"rollup": rollup.name, "start": first, "end": end, "written": written})
        total += written
    return total
