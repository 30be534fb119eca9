"""Checking dashboards without a Grafana: their structure, and their queries against a real InfluxDB.

Grafana replaces ``$timeFilter``, ``$__interval`` and template variables
before a query reaches InfluxDB; ``expand`` does the same for a given
moment, time range and variable values, so every panel's query can be run
as Grafana would run it (tests, the latency benchmark, the README
pictures all go through here).

Template variables carry registry text (an institution's name) into
InfluxQL, so the dashboards use one form only: ``"tag" =~ /^${var:regex}$/``.
Grafana's ``regex`` format escapes every regex metacharacter and the
slash that would end the regex literal, so no value can close it and add a
statement; the structural check refuses any other use of a variable, and
``expand`` refuses to expand one.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dashboards.grafana import GRID_WIDTH, Dashboard, Panel, Query
from meterwatch.localtime import CHINA as LOCAL
from meterwatch.store.errors import PermanentStoreError
from meterwatch.store.influx import InfluxStore

BUILTIN = {"timeFilter", "__interval", "__interval_ms"}
# Grafana's variable syntax, TemplateSrv.regex in public/app/features/templating/template_srv.ts:
# $var, [[var]] or [[var:fmt]], ${var} or ${var:fmt}.
_VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+)(?::(\w+))?\]\]|\$\{(\w+)(?::(\w+))?\}")
# The one form the dashboards use: a whole tag value matched by the variable, regex-escaped.
_SAFE_USE = re.compile(r"(?:=~|!~) /\^\$\{(\w+):regex\}\$/")
# escapeRegex in Grafana's packages/grafana-data/src/text/string.ts (the same set as kbn.regexEscape in
# public/app/core/utils/kbn.ts): backslash, ^ $ * + ? . ( ) | [ ] { } and the slash.
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_RELATIVE = re.compile(r"^(?:now-)?(\d+)([smhdwMy])$")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "M": 30 * 86400, "y": 365 * 86400}
NICE_S = (1, 10, 20, 30, 60, 300, 600, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_POINTS = 1000  # roughly a panel's width in pixels: Grafana's maxDataPoints


# -- structure ------------------------------------------------------------------------------------

def structural_problems(boards: Iterable[Dashboard], datasource_uids: set[str],
                        rendered: Iterable[Mapping[str, Any]]) -> list[str]:
    """What would make Grafana refuse or mis-draw a dashboard: empty list when all is well."""
    problems: list[str] = []
    boards = list(boards)
    uids = [b.uid for b in boards]
    problems += [f"dashboard uid {u!r} used twice" for u in {u for u in uids if uids.count(u) > 1}]
    for board, doc in zip(boards, rendered, strict=True):
        where = board.uid
        ids = [p["id"] for p in doc["panels"]]
        problems += [f"{where}: panel id {i} used twice" for i in {i for i in ids if ids.count(i) > 1}]
        cells: dict[tuple[int, int], str] = {}  # grid cell -> the panel that took it
        for p in doc["panels"]:
            pos = p["gridPos"]
            if pos["x"] < 0 or pos["x"] + pos["w"] > GRID_WIDTH:
                problems.append(f"{where}: panel {p['title']!r} outside the {GRID_WIDTH}-column grid")
            mine = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
            taken = sorted({cells[c] for c in mine if c in cells})
            problems += [f"{where}: panel {p['title']!r} overlaps {other!r}" for other in taken]
            cells.update(dict.fromkeys(mine, p["title"]))
            for ds in [p["datasource"], *(t["datasource"] for t in p["targets"])]:
                if ds.get("uid") not in datasource_uids:
                    problems.append(f"{where}: panel {p['title']!r} uses datasource {ds.get('uid')!r}, "
                                    "not in the provisioning")
        defined = {v["name"] for v in doc["templating"]["list"]}
        texts = [t["query"] for p in doc["panels"] for t in p["targets"]]
        texts += [v.get("query", "") for v in doc["templating"]["list"] if v["type"] == "query"]
        for text in texts:
            used = variables_used(text)
            for name in sorted(set(used) - defined - BUILTIN):
                problems.append(f"{where}: variable ${name} used but not defined")
            problems += [f"{where}: variable ${name} used unescaped (only \"tag\" =~ /^${{{name}:regex}}$/ "
                         f"is safe): {text}" for name in unsafe_uses(text)]
    return problems


def variables_used(text: str) -> list[str]:
    """Every template variable a query names, builtins included, in order."""
    return [m.group(1) or m.group(2) or m.group(4) for m in _VARIABLE.finditer(text)]


def unsafe_uses(text: str) -> list[str]:
    """Variables a query uses other than as ``=~ /^${var:regex}$/``: values Grafana would insert unescaped."""
    used = [name for name in variables_used(text) if name not in BUILTIN]
    safe = _SAFE_USE.findall(text)
    for name in safe:
        used.remove(name)
    return used


# -- expansion ------------------------------------------------------------------------------------

def parse_time(expr: str, now: int) -> int:
    """A Grafana time expression (now-7d, now/d, now/M, now/y, 30d) as Unix seconds, days local."""
    if expr == "now":
        return now
    local = datetime.fromtimestamp(now, LOCAL)
    if expr == "now/d":
        return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())
    if expr == "now/M":
        return int(local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())
    if expr == "now/y":
        return int(local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())
    m = _RELATIVE.match(expr)
    if not m:
        raise ValueError(f"unsupported time expression {expr!r}")
    return now - int(m.group(1)) * UNIT_S[m.group(2)]


def duration_s(expr: str) -> int:
    m = _RELATIVE.match(expr)
    if not m:
        raise ValueError(f"unsupported duration {expr!r}")
    return int(m.group(1)) * UNIT_S[m.group(2)]


def panel_range(board: Dashboard, panel: Panel, now: int, board_from: str | None = None) -> tuple[int, int]:
    """The range Grafana queries for a panel: its relative-time override, else the dashboard's; then shifted."""
    start = parse_time(panel.time_from or board_from or board.time_from, now)
    end = now
    if panel.time_shift:
        shift = duration_s(panel.time_shift)
        start, end = start - shift, end - shift
    return start, end


def interval_s(start: int, end: int, floor: str | None) -> int:
    wanted = max((end - start) / MAX_POINTS, duration_s(floor) if floor else 1)
    return next((n for n in NICE_S if n >= wanted), NICE_S[-1])


@dataclass(frozen=True)
class CustomAll:
    """A variable's custom All value (``allValue``), which Grafana inserts as it is, never formatted."""

    text: str


# What a variable holds: one value, several (a multi-value pick, or Grafana's own All: every option), or a
# custom All.  Values are raw registry text; escaping them is expand's job, as it is Grafana's.
Value = str | Sequence[str] | CustomAll


def regex_escape(value: str) -> str:
    """Grafana's ``escapeRegex`` (packages/grafana-data/src/text/string.ts)."""
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def format_regex(value: str | Sequence[str]) -> str:
    """Grafana's ``regex`` format: formatRegistry, VariableFormatID.Regex (grafana/scenes
    packages/scenes/src/variables/interpolation/formatRegistry.ts; formerly
    public/app/features/templating/formatRegistry.ts): one value escaped, several as ``(a|b)``."""
    if isinstance(value, str):
        return regex_escape(value)
    escaped = [regex_escape(v) for v in value]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def format_value(name: str, value: Value, fmt: str | None) -> str:
    """One variable as TemplateSrv._evaluateVariableExpression inserts it (template_srv.ts).

    A custom All value is inserted unformatted ("skip formatting of custom
    all values"); otherwise only the ``regex`` format is accepted: without
    an explicit format the InfluxDB data source inserts a single-value
    variable as it is outside a regex (datasource.ts interpolateQueryExpr),
    which is how a name with a quote broke the queries.
    """
    if isinstance(value, CustomAll):
        return value.text
    if fmt != "regex":
        raise ValueError(f"${name} is not expanded with the :regex format (got {fmt!r}): Grafana would insert "
                         "it unescaped; write \"tag\" =~ /^${" + name + ":regex}$/")
    return format_regex(value)


def expand(query: Query, values: Mapping[str, Value], start: int, end: int, interval: int) -> str:
    """The query as Grafana sends it: time filter, interval and variables replaced, in one pass."""
    builtins = {"timeFilter": f"time >= {start}s AND time <= {end}s", "__interval_ms": str(interval * 1000),
                "__interval": f"{interval}s"}

    def value(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        if name in builtins:
            return builtins[name]
        if name not in values:
            raise KeyError(f"no value for ${name}")
        return format_value(name, values[name], m.group(3) or m.group(5))
    return _VARIABLE.sub(value, query.text)


# -- running --------------------------------------------------------------------------------------

@dataclass
class QueryRun:
    board: str
    panel: str
    text: str
    series: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    problem: str = ""


def check_result(query: Query, series: list[dict[str, Any]]) -> str:
    """Empty when the result carries the columns and tags the panel reads, with at least one full row."""
    if not any(s.get("values") for s in series):
        return "no rows"
    full = 0
    for s in series:
        columns = s.get("columns", [])
        missing = [c for c in query.columns if c not in columns]
        missing += [f"tag {t}" for t in query.tags if t not in s.get("tags", {})]
        if missing:
            return f"missing {', '.join(missing)} (got {columns} {s.get('tags')})"
        wanted = [columns.index(c) for c in query.columns]
        full += sum(all(row[k] is not None for k in wanted) for row in s["values"])
    return "" if full else "every row has an empty column"


async def run_board(store: InfluxStore, board: Dashboard, values: Mapping[str, Value], now: int,
                    board_from: str | None = None) -> list[QueryRun]:
    """Every query of every panel, expanded and run as Grafana would, with what it returned and how fast."""
    runs = []
    for panel in board.panels():
        start, end = panel_range(board, panel, now, board_from)
        for query in panel.queries:
            run = QueryRun(board.uid, panel.title, expand(query, values, start, end,
                                                           interval_s(start, end, panel.min_interval)))
            started = time.perf_counter()
            try:
                run.series = await store.query(run.text)
            except PermanentStoreError as exc:
                run.problem = str(exc)
            run.seconds = time.perf_counter() - started
            run.problem = run.problem or check_result(query, run.series)
            runs.append(run)
    return runs


async def variable_values(store: InfluxStore, board: Dashboard, chosen: Mapping[str, Value],
                          missing: str | None = None) -> dict[str, Value]:
    """Values for a board's variables: ``chosen`` where given, All where allowed, else the first value.

    Variable queries are themselves run (in order, each seeing the ones
    before), so a variable whose query returns nothing is an error here
    just as it would be an empty picker in Grafana, unless ``missing``
    gives a value to use instead.
    """
    values: dict[str, Value] = {}
    for v in board.variables:
        if v.name in chosen:
            values[v.name] = chosen[v.name]
            continue
        if v.include_all and v.all_value is not None:
            values[v.name] = CustomAll(v.all_value)
            continue
        if v.options:
            values[v.name] = v.options[0][0]
            continue
        series = await store.query(expand(Query(v.query, ()), values, 0, 0, 1))
        found = sorted(str(row[1]) for s in series for row in s.get("values", []))
        if not found and missing is not None:
            values[v.name] = missing
            continue
        if not found:
            raise LookupError(f"{board.uid}: variable ${v.name} has no values: {v.query}")
        values[v.name] = tuple(found) if v.include_all else found[0]  # Grafana's All: every option
    return values
