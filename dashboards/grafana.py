"""A small model of Grafana's dashboard JSON: just what meterwatch's dashboards use.

Dashboards are written as Python values (``Dashboard`` of rows of
``Panel`` of ``Query``) and rendered to the JSON model Grafana imports
(schemaVersion 39, Grafana 10/11).  Keeping them as values, not JSON
files, lets the tests walk every query of every panel and run it against a
real InfluxDB, and lets the layout be computed (no hand-placed gridPos to
overlap).  Each query also says which columns it must return: that is what
the validation checks, and what a panel's field overrides rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

GRID_WIDTH = 24
SCHEMA_VERSION = 39
TIMEZONE = "Asia/Shanghai"  # "today" and "this month" are the province's, whoever looks


@dataclass(frozen=True)
class Query:
    """One InfluxQL target.  ``columns`` and ``tags`` are what the result must carry."""

    text: str
    columns: tuple[str, ...]
    tags: tuple[str, ...] = ()
    legend: str = ""  # Grafana alias, e.g. "$tag_device"
    table: bool = False  # result format: table instead of time series


@dataclass(frozen=True)
class Panel:
    title: str
    type: str  # timeseries, stat, table, barchart, bargauge, piechart
    queries: tuple[Query, ...]
    width: int = 12
    height: int = 8
    unit: str = ""
    description: str = ""
    time_from: str | None = None  # relative time override, e.g. "now/d" (today so far)
    time_shift: str | None = None  # e.g. "1y": the same days last year
    min_interval: str | None = None  # floor for $__interval: the data's own resolution
    decimals: int | None = None
    mappings: Mapping[str, str] = field(default_factory=dict)  # id -> Chinese label
    thresholds: tuple[tuple[float | None, str], ...] = ()  # (from value, colour); first is the base
    options: Mapping[str, Any] = field(default_factory=dict)
    overrides: tuple[dict[str, Any], ...] = ()
    transformations: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Variable:
    """A query variable, or a custom one when ``options`` (value, label) are given.

    ``hide`` is for a variable that only carries an id chosen through another.
    """

    name: str
    label: str
    query: str
    multi: bool = False
    include_all: bool = False
    hide: bool = False
    sort: int = 1  # alphabetical
    options: tuple[tuple[str, str], ...] = ()
    all_value: str | None = ".*"  # None: Grafana's own All, an alternation of every value the query found


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    rows: tuple[tuple[Panel, ...], ...]
    variables: tuple[Variable, ...] = ()
    time_from: str = "now-7d"
    tags: tuple[str, ...] = ("meterwatch",)
    refresh: str = "5m"

    def placed(self) -> list[tuple[int, dict[str, int], Panel]]:
        """(panel id, gridPos, panel) with panels flowed left to right, a new line when a row is full."""
        out: list[tuple[int, dict[str, int], Panel]] = []
        y = 0
        pid = 1
        for row in self.rows:
            x, line_height = 0, 0
            for panel in row:
                if x + panel.width > GRID_WIDTH:
                    y, x, line_height = y + line_height, 0, 0
                out.append((pid, {"x": x, "y": y, "w": panel.width, "h": panel.height}, panel))
                pid += 1
                x += panel.width
                line_height = max(line_height, panel.height)
            y += line_height
        return out

    def panels(self) -> list[Panel]:
        return [p for row in self.rows for p in row]

    def to_json(self, datasource: Mapping[str, str]) -> dict[str, Any]:
        return {
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "tags": list(self.tags),
            "timezone": TIMEZONE,
            "schemaVersion": SCHEMA_VERSION,
            "version": 1,
            "editable": True,
            "graphTooltip": 1,
            "refresh": self.refresh,
            "time": {"from": self.time_from, "to": "now"},
            "templating": {"list": [_variable_json(v, datasource) for v in self.variables]},
            "annotations": {"list": []},
            "panels": [_panel_json(pid, pos, p, datasource) for pid, pos, p in self.placed()],
        }


def _variable_json(v: Variable, datasource: Mapping[str, str]) -> dict[str, Any]:
    common: dict[str, Any] = {"name": v.name, "label": v.label, "multi": v.multi, "includeAll": v.include_all,
                              "hide": 2 if v.hide else 0, "current": {}}
    if v.include_all:
        common["current"] = {"text": "All", "value": "$__all"}
        if v.all_value is not None:  # used inside =~ /^$var$/: All as a regex, not a list of 5,000 ids
            common["allValue"] = v.all_value
    if v.options:  # Grafana's "text : value" list
        return {**common, "type": "custom", "query": ",".join(f"{text} : {value}" for value, text in v.options),
                "options": [{"text": text, "value": value, "selected": False} for value, text in v.options]}
    return {**common, "type": "query", "datasource": dict(datasource), "query": v.query, "definition": v.query,
            "refresh": 2,  # on time range change: institutions that started reporting appear
            "sort": v.sort, "options": [], "regex": ""}


def _panel_json(pid: int, pos: dict[str, int], p: Panel, datasource: Mapping[str, str]) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": p.unit} if p.unit else {}
    if p.decimals is not None:
        defaults["decimals"] = p.decimals
    if p.mappings:
        defaults["mappings"] = [{"type": "value", "options": {
            key: {"text": text, "index": k} for k, (key, text) in enumerate(p.mappings.items())}}]
    if p.thresholds:
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in p.thresholds]}
    panel: dict[str, Any] = {
        "id": pid, "type": p.type, "title": p.title, "description": p.description, "gridPos": pos,
        "datasource": dict(datasource),
        "targets": [_target_json(chr(ord("A") + k), q, datasource) for k, q in enumerate(p.queries)],
        "fieldConfig": {"defaults": defaults, "overrides": list(p.overrides)},
        "options": dict(p.options),
    }
    if p.time_from:
        panel["timeFrom"] = p.time_from
    if p.time_shift:
        panel["timeShift"] = p.time_shift
    if p.min_interval:
        panel["interval"] = p.min_interval
    if p.transformations:
        panel["transformations"] = list(p.transformations)
    return panel


def _target_json(ref: str, q: Query, datasource: Mapping[str, str]) -> dict[str, Any]:
    return {"refId": ref, "datasource": dict(datasource), "rawQuery": True, "query": q.text,
            "resultFormat": "table" if q.table else "time_series", "alias": q.legend}
