"""Tariffs: what a kWh, a m3 and a GJ cost, on which day, for which institution (``tariffs.toml``).

The file lists dated schedules per kind.  Each applies from its ``from``
date (local midnight) until the next schedule of the same reach, so a
price change re-prices history correctly.  A schedule may be limited to
some ``cities`` and/or institution ``types``; for an institution on a
given day the most specific schedule in force wins (cities and types >
types > cities > the whole province), then the latest ``from``::

    [[electricity]]
    from = 2026-01-01
    price = { sharp = 1.10, peak = 0.95, flat = 0.62, valley = 0.30 }   # yuan per kWh
    bands = { sharp = ["19:00-21:00"], peak = ["08:00-11:00", "17:00-19:00", "21:00-23:00"],
              valley = ["23:00-07:00"] }   # local time; hours in no band are flat; may cross midnight
    registers = ["sharp", "peak", "flat", "valley"]   # optional: price from DL/T 645 tariff registers T1..T4

    [[water]]
    from = 2026-01-01
    price = 4.40                                  # yuan per m3, sewage charge included
    surcharge = [ { above = 0.0, factor = 1.5 }, { above = 0.2, factor = 2.0 } ]
    surcharge_on = 3.30   # optional: the part of the price the factors apply to (not the sewage charge)

    [[heat]]
    from = 2026-01-01
    basis = "gj"          # or "m2": price per m2 of floor area per heating season
    price = 45.0
    season = ["11-01", "03-31"]                   # m2 basis: the heating season (default)

Pricing rules:

- electricity: an interval's consumption is spread evenly over its
  duration and each part priced by the band it falls in (minute
  resolution), with the schedule in force at that moment; with
  ``registers``, a day on which every electricity meter of an institution
  reported its DL/T 645 tariff registers is priced from their deltas
  instead (the meter's own time-of-use accounting, as the utility bills);
- water: each calendar month, use above the monthly constraint quota
  (annual / 12) is charged at price x factor, tier by tier (超定额累进加价):
  with the example, up to 20 % over at x1.5 and beyond at x2 (with
  ``surcharge_on``, only that part of the price is multiplied);
- heat: ``gj`` prices metered GJ; ``m2`` spreads floor area x price evenly
  over the days of the heating season.

Loading never stops at the first problem: every one is reported as
``tariffs.toml:line: problem`` and the bad schedule left out.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from meterwatch.localtime import DAY, LOCAL_UTC_OFFSET_S, day_to_date, midnight_of
from meterwatch.registry.model import Institution, Problem

FILE = "tariffs.toml"
KINDS = ("electricity", "water", "heat")
BANDS = ("sharp", "peak", "flat", "valley")
HEAT_BASES = ("gj", "m2")
DEFAULT_SEASON = ((11, 1), (3, 31))  # Ningxia's heating season, 1 November to 31 March
_SPAN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


@dataclass(frozen=True)
class Schedule:
    kind: str
    start: date
    line: int
    cities: frozenset[str] = frozenset()
    types: frozenset[str] = frozenset()
    price: float = 0.0  # water per m3; heat per GJ or per m2 and season
    band_price: tuple[float, ...] = ()  # electricity, in the order of BANDS
    minute_band: np.ndarray | None = field(default=None, repr=False, compare=False)  # 1440 indices into BANDS
    registers: tuple[str, ...] = ()  # electricity: the band of each DL/T 645 tariff register (T1, T2, ...)
    surcharge: tuple[tuple[float, float], ...] = ()  # water: (above, factor), ascending
    surcharge_on: float | None = None  # water: the part of the price the factors multiply (default: all of it)
    basis: str = "gj"
    season: tuple[tuple[int, int], tuple[int, int]] = DEFAULT_SEASON

    @property
    def specificity(self) -> int:
        return 2 * bool(self.types) + bool(self.cities)

    def applies_to(self, inst: Institution) -> bool:
        return (not self.cities or inst.city in self.cities) and (not self.types or inst.type in self.types)

    def band_seconds(self) -> np.ndarray:
        """Cumulative seconds of each band from local midnight, at every minute edge: shape (1441, 4)."""
        assert self.minute_band is not None
        onehot = np.zeros((1440, len(BANDS)))
        onehot[np.arange(1440), self.minute_band] = 60.0
        return np.vstack([np.zeros(len(BANDS)), np.cumsum(onehot, axis=0)])


@dataclass
class Tariffs:
    schedules: dict[str, list[Schedule]] = field(default_factory=dict)
    fingerprint: str = ""  # of the file's text: costs priced with other tariffs are priced again

    def __bool__(self) -> bool:
        return any(self.schedules.values())

    def schedule_for(self, kind: str, inst: Institution, day: date) -> Schedule | None:
        """The schedule in force for ``inst`` on ``day``: most specific first, then the latest ``from``."""
        best = None
        for s in self.schedules.get(kind, ()):
            if s.start <= day and s.applies_to(inst) and (
                    best is None or (s.specificity, s.start) > (best.specificity, best.start)):
                best = s
        return best

    def timeline(self, kind: str, inst: Institution) -> list[tuple[int, Schedule]]:
        """(Unix time from which it applies, schedule) for ``inst``, in time order; no entry before the first."""
        out: list[tuple[int, Schedule]] = []
        for day in sorted({s.start for s in self.schedules.get(kind, ()) if s.applies_to(inst)}):
            chosen = self.schedule_for(kind, inst, day)
            if chosen is not None and (not out or out[-1][1] is not chosen):
                out.append((midnight_of(day), chosen))
        return out


Timeline = list[tuple[int, Schedule]]


def _in_force(timeline: Timeline, ts: np.ndarray) -> np.ndarray:
    """Index into ``timeline`` of the schedule in force at each time; -1 before the first."""
    return np.searchsorted(np.array([since for since, _ in timeline], dtype=np.int64), ts, side="right") - 1


def price_electricity(timeline: Timeline, start: np.ndarray, end: np.ndarray,
                      kwh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """kWh of each interval [start, end) split over the bands, shape (n, 4), and its cost in yuan.

    Consumption is spread evenly over the interval, and each part priced by
    the band and the schedule in force when it was used.  Where some of the
    interval has no schedule (before the first ``from``), the cost is NaN.
    """
    start, end = np.asarray(start, dtype=np.int64), np.asarray(end, dtype=np.int64)
    kwh = np.asarray(kwh, dtype=float)
    width = np.maximum(end - start, 1).astype(float)
    split = np.zeros((len(kwh), len(BANDS)))
    cost = np.zeros(len(kwh))
    covered = np.zeros(len(kwh), dtype=np.int64)
    for i, (since, schedule) in enumerate(timeline):
        until = timeline[i + 1][0] if i + 1 < len(timeline) else np.iinfo(np.int64).max
        a, b = np.clip(start, since, until), np.clip(end, since, until)
        part = (_band_integral(schedule, b) - _band_integral(schedule, a)) * (kwh / width)[:, None]
        split += part
        cost += part @ np.array(schedule.band_price)
        covered += b - a
    cost[covered < end - start] = np.nan
    return split, cost


def price_water(timeline: Timeline, days: np.ndarray, m3: np.ndarray, monthly_quota_m3: float | np.ndarray | None,
                group: np.ndarray | None = None) -> np.ndarray:
    """Cost of each local day's water; rows ordered by ``group`` (an institution), then day, with the
    month's days before the first one asked for included.

    The progressive surcharge accrues as the month's use passes the quota
    (one per row, or one for all): a day is charged price x factor for the
    part of it above the monthly quota, tier by tier, so the month's cost is
    the sum of its days' and a report of any period adds up.  NaN where a
    day has no schedule.
    """
    days, m3 = np.asarray(days, dtype=np.int64), np.nan_to_num(np.asarray(m3, dtype=float))
    group = np.zeros(len(days), dtype=np.int64) if group is None else np.asarray(group, dtype=np.int64)
    quota = np.broadcast_to(np.nan_to_num(np.asarray(monthly_quota_m3 if monthly_quota_m3 is not None else 0.0,
                                                     dtype=float)), days.shape)
    out = np.full(len(days), np.nan)
    which = _in_force(timeline, days * DAY - LOCAL_UTC_OFFSET_S)
    # cumulative use within each (group, month): a running sum that restarts where the key changes
    month = _month_index(days)
    key = group * 100_000 + month
    starts = np.r_[True, key[1:] != key[:-1]] if len(key) else np.zeros(0, dtype=bool)
    running = np.cumsum(m3)
    base = np.maximum.accumulate(np.where(starts, running - m3, 0.0)) if len(m3) else running
    after = running - base
    before = after - m3
    for k in np.unique(which[which >= 0]):
        schedule = timeline[k][1]
        rows = which == k
        on = schedule.surcharge_on if schedule.surcharge_on is not None else schedule.price
        q = quota[rows]
        extra = np.where(q > 0, _tiered(after[rows], q, schedule.surcharge) - _tiered(before[rows], q, schedule.surcharge)
                         - m3[rows], 0.0)
        out[rows] = m3[rows] * schedule.price + extra * on
    return out


def _month_index(days: np.ndarray) -> np.ndarray:
    """Months since January 1970 of local day numbers."""
    dates = np.array(days, dtype="datetime64[D]")
    return dates.astype("datetime64[M]").astype(np.int64)


def price_heat(timeline: Timeline, days: np.ndarray, gj: np.ndarray, area_m2: float | np.ndarray) -> np.ndarray:
    """Cost per local day: metered GJ x price (``gj`` basis), or the season's area charge spread evenly."""
    days = np.asarray(days, dtype=np.int64)
    area = np.broadcast_to(np.asarray(area_m2, dtype=float), days.shape)
    out = np.full(len(days), np.nan)
    which = _in_force(timeline, days * DAY - LOCAL_UTC_OFFSET_S)
    for k in np.unique(which[which >= 0]):
        schedule = timeline[k][1]
        rows = np.flatnonzero(which == k)
        if schedule.basis == "gj":
            out[rows] = np.nan_to_num(np.asarray(gj, dtype=float)[rows]) * schedule.price
        else:
            lengths = {int(d): season_length(day_to_date(int(d)), schedule.season) for d in np.unique(days[rows])}
            length = np.array([lengths[int(d)] for d in days[rows]])
            out[rows] = np.where(length > 0, area[rows] * schedule.price / np.maximum(length, 1), 0.0)
    return out


def _tiered(used: np.ndarray | float, quota: np.ndarray | float, tiers: tuple[tuple[float, float], ...]
            ) -> np.ndarray:
    """Price-equivalents of ``used`` m3 in a month: 1 per m3 within the quota, each tier's factor above it."""
    used, quota = np.asarray(used, dtype=float), np.asarray(quota, dtype=float)
    charged = np.minimum(used, quota)
    for i, (above, factor) in enumerate(tiers):
        low = quota * (1 + above)
        high = quota * (1 + tiers[i + 1][0]) if i + 1 < len(tiers) else np.inf
        charged = charged + factor * np.maximum(0.0, np.minimum(used, high) - low)
    if not tiers:
        charged = charged + np.maximum(0.0, used - quota)
    return charged


def season_length(day: date, season: tuple[tuple[int, int], tuple[int, int]]) -> int:
    """Days of the heating season holding ``day``, or 0 if ``day`` is outside every season."""
    (sm, sd), (em, ed) = season
    for first_year in (day.year - 1, day.year):
        first = date(first_year, sm, sd)
        last = date(first_year + ((em, ed) < (sm, sd)), em, ed)
        if first <= day <= last:
            return (last - first).days + 1
    return 0


def _band_integral(schedule: Schedule, ts: np.ndarray) -> np.ndarray:
    """Seconds spent in each band from 1970-01-01 local midnight to ``ts``, shape (n, 4)."""
    cumulative = schedule.band_seconds()
    local = ts + LOCAL_UTC_OFFSET_S
    days, second = np.divmod(local, DAY)
    edges = np.arange(1441) * 60.0
    within = np.column_stack([np.interp(second, edges, cumulative[:, b]) for b in range(len(BANDS))])
    return days[:, None] * cumulative[-1][None, :] + within


# -- loading ----------------------------------------------------------------------------------------

def _key_lines(text: str) -> list[tuple[str, int, dict[str, int]]]:
    """(kind, header line, {key: line}) of every ``[[kind]]`` table, in file order."""
    tables: list[tuple[str, int, dict[str, int]]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        header = re.match(r"^\[\[\s*([^\]\s]+)\s*\]\]", stripped)
        if header:
            tables.append((header.group(1), number, {}))
        elif stripped.startswith("["):
            tables.append(("", number, {}))
        elif tables and (key := re.match(r"^([A-Za-z_]+)\s*=", stripped)):
            tables[-1][2].setdefault(key.group(1), number)
    return tables


class _Reader:
    """Checks one ``[[kind]]`` table, collecting problems at the line of the key they concern."""

    def __init__(self, raw: dict[str, Any], header: int, keys: dict[str, int], problems: list[Problem]):
        self.raw, self.header, self.keys, self.problems = raw, header, keys, problems
        self.ok = True

    def fail(self, key: str | None, message: str) -> None:
        self.ok = False
        self.problems.append(Problem(FILE, self.keys.get(key, self.header) if key else self.header, message))

    def price(self, value: Any, what: str, key: str = "price") -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            self.fail(key, f"{what}: {value!r} is not a number")
            return 0.0
        if value < 0:
            self.fail(key, f"{what}: negative price {value}")
        return float(value)

    def names(self, key: str, what: str, known: dict[str, str]) -> frozenset[str]:
        value = self.raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"{key} must be a list of names")
            return frozenset()
        for v in value:
            if v not in known:
                self.fail(key, f"unknown {what} {v!r} (known: {', '.join(known)})")
        return frozenset(value)


def _minute_bands(reader: _Reader, bands: Any) -> np.ndarray | None:
    if not isinstance(bands, dict):
        reader.fail("bands", "bands must be a table of band = [\"HH:MM-HH:MM\", ...]")
        return None
    minute = np.full(1440, BANDS.index("flat"))
    owner: dict[int, str] = {}
    for band, spans in bands.items():
        if band not in BANDS or band == "flat":
            reader.fail("bands", f"unknown band {band!r} (bands: sharp, peak, valley; other hours are flat)")
            continue
        for span in spans if isinstance(spans, list) else [spans]:
            m = _SPAN.match(span) if isinstance(span, str) else None
            if not m or int(m[1]) > 24 or int(m[3]) > 24 or int(m[2]) > 59 or int(m[4]) > 59:
                reader.fail("bands", f"{band}: bad time span {span!r} (expected HH:MM-HH:MM, local time)")
                continue
            first, last = int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])
            if first == last or first > 1440 or last > 1440:
                reader.fail("bands", f"{band}: empty or impossible span {span!r}")
                continue
            minutes = range(first, last) if first < last else [*range(first, 1440), *range(0, last)]
            for k in minutes:
                if k in owner:
                    reader.fail("bands", f"{band} {span} overlaps {owner[k]} at "
                                         f"{k // 60:02d}:{k % 60:02d}")
                    break
                owner[k] = f"{band} {span}"
                minute[k] = BANDS.index(band)
    return minute


def _schedule(kind: str, raw: dict[str, Any], header: int, keys: dict[str, int], problems: list[Problem],
              cities: dict[str, str], types: dict[str, str]) -> Schedule | None:
    r = _Reader(raw, header, keys, problems)
    start = raw.get("from")
    if not isinstance(start, date):
        r.fail("from" if "from" in raw else None,
               f"[[{kind}]] needs from = YYYY-MM-DD (the date it applies from)")
    common = {"kind": kind, "start": start, "line": header,
              "cities": r.names("cities", "city", cities),
              "types": r.names("types", "institution type", types)}
    extra: dict[str, Any] = {}
    if kind == "electricity":
        prices = raw.get("price")
        if not isinstance(prices, dict):
            r.fail("price", "electricity price must be a table: { sharp = .., peak = .., flat = .., valley = .. }")
            prices = {}
        for band in prices:
            if band not in BANDS:
                r.fail("price", f"unknown band {band!r} in price (bands: {', '.join(BANDS)})")
        minute = _minute_bands(r, raw.get("bands", {}))
        used = {BANDS[b] for b in np.unique(minute)} if minute is not None else set()
        for band in sorted(used - set(prices), key=BANDS.index):
            r.fail("price", f"no price for the {band} band")
        registers = raw.get("registers", [])
        if not isinstance(registers, list) or any(b not in BANDS for b in registers):
            r.fail("registers", f"registers must list the band of each tariff register, T1 first "
                                f"(bands: {', '.join(BANDS)}), not {registers!r}")
            registers = []
        extra = {"band_price": tuple(r.price(prices.get(b, 0.0), f"{b} price") for b in BANDS), "minute_band": minute,
                 "registers": tuple(registers)}
    elif kind == "water":
        tiers = []
        for tier in raw.get("surcharge", []):
            if not isinstance(tier, dict) or set(tier) != {"above", "factor"}:
                r.fail("surcharge", f"surcharge tier {tier!r} must be {{ above = share, factor = x }}")
                continue
            above, factor = tier["above"], tier["factor"]
            if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (above, factor)) \
                    or above < 0 or factor < 1:
                r.fail("surcharge", f"surcharge tier {tier!r}: above must be >= 0 and factor >= 1")
                continue
            tiers.append((float(above), float(factor)))
        if [a for a, _ in tiers] != sorted({a for a, _ in tiers}):
            r.fail("surcharge", "surcharge tiers must have distinct, ascending 'above' shares")
        price = r.price(raw.get("price"), "water price")
        on = raw.get("surcharge_on")
        if on is not None and r.price(on, "surcharge_on", "surcharge_on") > price:
            r.fail("surcharge_on", f"surcharge_on {on} is more than the price {price}")
        extra = {"price": price, "surcharge": tuple(tiers), "surcharge_on": None if on is None else float(on)}
    else:
        basis = raw.get("basis", "gj")
        if basis not in HEAT_BASES:
            r.fail("basis", f"heat basis {basis!r} must be \"gj\" (per GJ) or \"m2\" (per m2 and season)")
        extra = {"price": r.price(raw.get("price"), "heat price"), "basis": basis,
                 "season": _season(r, raw.get("season"))}
    return Schedule(**common, **extra) if r.ok else None


def _season(r: _Reader, raw: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    if raw is None:
        return DEFAULT_SEASON
    parts = [_MONTH_DAY.match(x) if isinstance(x, str) else None for x in (raw if isinstance(raw, list) else [])]
    try:
        if len(parts) != 2 or not all(parts):
            raise ValueError
        ends = tuple((int(m[1]), int(m[2])) for m in parts if m)
        for month, day in ends:
            date(2024, month, day)  # a leap year: 02-29 is a valid end
        return ends  # type: ignore[return-value]
    except ValueError:
        r.fail("season", f"season {raw!r} must be [\"MM-DD\", \"MM-DD\"] (first and last heating day)")
        return DEFAULT_SEASON


def emission_problem(row: Any) -> str | None:
    """What is wrong with one ``[[conversion.emission]]`` row of quotas.toml, or None."""
    if not isinstance(row, dict) or not isinstance(row.get("from"), date):
        return "[[conversion.emission]] needs from = YYYY-MM-DD"
    for key in ("grid_kgco2_per_kwh", "heat_kgco2_per_gj"):
        value = row.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            return f"[[conversion.emission]] {key} must be a number >= 0, not {value!r}"
    return None


def load_tariffs(text: str, cities: dict[str, str], types: dict[str, str]) -> tuple[Tariffs, list[Problem]]:
    """Parse ``tariffs.toml``; every problem as ``tariffs.toml:line: ...``, bad schedules left out."""
    problems: list[Problem] = []
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = int(m[1]) if (m := re.search(r"line (\d+)", str(exc))) else 0
        return Tariffs(), [Problem(FILE, line, f"not valid TOML: {exc}")]
    tables = _key_lines(text)
    tariffs = Tariffs({kind: [] for kind in KINDS}, hashlib.sha256(text.encode("utf-8")).hexdigest()[:12])
    seen: dict[str, int] = {}
    for kind, raw_list in data.items():
        if kind not in KINDS or not isinstance(raw_list, list):
            line = next((h for k, h, _ in tables if k == kind), 0)
            problems.append(Problem(FILE, line, f"unknown tariff kind [[{kind}]] (known: {', '.join(KINDS)})"))
            continue
        located = [(h, keys) for k, h, keys in tables if k == kind]
        for i, raw in enumerate(raw_list):
            header, keys = located[i] if i < len(located) else (0, {})
            schedule = _schedule(kind, raw, header, keys, problems, cities, types)
            if schedule is None:
                continue
            reach = f"{kind} from {schedule.start} for {sorted(schedule.cities) or 'every city'} / " \
                    f"{sorted(schedule.types) or 'every type'}"
            if reach in seen:
                problems.append(Problem(FILE, header, f"a second {reach} (first on line {seen[reach]})"))
                continue
            seen[reach] = header
            tariffs.schedules[kind].append(schedule)
    return tariffs, problems
