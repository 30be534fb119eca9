"""What the five dashboards share: Chinese labels for ids, variables, and query fragments.

Tag values in the store are ids (``yinchuan``, ``education``, ``leak``);
officers read Chinese.  Ids are turned into "中文 English" labels by value
mappings on the panels, and the city / type pickers list the same labels,
so no Chinese text has to be written into every point.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from dashboards.grafana import Variable
from dashboards.rollups import DAY
from meterwatch.const import GARBAGE_CATEGORIES, INSTITUTION_TYPES, UNKNOWN
from meterwatch.localtime import LOCAL_UTC_OFFSET_S

KINDS = {"electricity": "电 Electricity", "water": "水 Water", "heat": "热 Heat"}
TYPES = {k: f"{v} {k.capitalize()}" for k, v in INSTITUTION_TYPES.items()}
CATEGORIES = {**{k: f"{v} {k.capitalize()}" for k, v in GARBAGE_CATEGORIES.items()}, UNKNOWN: "未登记卡 Unknown card"}
STATES = {"open": "新告警 Open", "update": "更新 Update", "resolved": "已恢复 Resolved",
          "acknowledged": "已确认 Acknowledged"}
SEVERITIES = {"info": "提示 Info", "warning": "警告 Warning", "critical": "严重 Critical"}
INDICATORS = {"energy": "综合能耗 Energy (kgce)", "electricity": "电 Electricity (kWh)", "water": "水 Water (m³)",
              "cost": "能源费用 Cost (yuan, against the budget)"}



@dataclass(frozen=True)
class AnalyticsFacts:
    """What the boards show of the analytics rules, handed in by the caller (this package depends on the
    core only; the command line and scenarios read them from ``analytics.rules``)."""

    rule_labels: Mapping[str, str]  # rule id -> "漏水 Leak"
    sorting_target_share: float  # the sorting rule's target, drawn on the garbage board


DAILY = f"time(1d, {-LOCAL_UTC_OFFSET_S}s)"  # days from the province's local midnight, as the rollups
OPEN_LOOKBACK = f"time > now() - {365 * DAY}s"  # an alert opened months ago and still open is still open
TODAY, THIS_MONTH, THIS_YEAR = "now/d", "now/M", "now/y"


def matches(tag: str, variable: str) -> str:
    """The one way a dashboard filters by a variable: the whole tag value, regex-escaped by Grafana.

    ``${var:regex}`` escapes every regex metacharacter and the slash, so a
    registry name (``x/ ; DROP ...``, ``a.b``, ``'``) matches only itself
    and can never end the regex literal; a multi-value pick becomes
    ``(a|b)``, and a custom All (``.*``) is inserted as it is.  Never
    ``'$var'``: the InfluxDB data source inserts it unescaped.
    """
    return f'"{tag}" =~ /^${{{variable}:regex}}$/'


def city_labels(cities: Mapping[str, str]) -> dict[str, str]:
    return {k: f"{v} {k.capitalize()}" for k, v in cities.items()}


def labels(*maps: Mapping[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in maps:
        out.update(m)
    return out


def city_variable(cities: Mapping[str, str]) -> Variable:
    return Variable("city", "城市 City", "", multi=True, include_all=True, options=tuple(city_labels(cities).items()))


TYPE_VARIABLE = Variable("type", "类型 Type", "", multi=True, include_all=True, options=tuple(TYPES.items()))
# The picker lists Chinese names (a tag of the daily statistic); a hidden variable carries the chosen id.
NAME_VARIABLE = Variable("name", "单位 Institution",
                         'SHOW TAG VALUES FROM "statistic" WITH KEY = "name" '
                         f'WHERE {matches("city", "city")} AND {matches("type", "type")}')
INSTITUTION_VARIABLE = Variable("institution", "单位编号 Institution id",
                                'SHOW TAG VALUES FROM "statistic" WITH KEY = "institution" '
                                f'WHERE {matches("name", "name")} AND {matches("city", "city")}', hide=True)


def open_alerts(select: str, *, where: str = "", fields: tuple[str, ...] = ("state",),
                by: tuple[str, ...] = ("rule", "institution", "device"), group: tuple[str, ...] = ()) -> str:
    """Alerts whose latest event is not ``resolved``; ``select`` reads the inner query's columns.

    The inner query takes each alert's last event (one alert = one rule on
    one device), the outer one keeps those still open and aggregates them.
    """
    inner = ", ".join(f'last("{f}") AS "{f}"' for f in dict.fromkeys(("state", *fields)))
    cond = f" AND {where}" if where else ""
    outer_group = f" GROUP BY {', '.join(quote(t) for t in group)}" if group else ""
    return (f'SELECT {select} FROM (SELECT {inner} FROM "alert" WHERE {OPEN_LOOKBACK}{cond} '
            f"GROUP BY {', '.join(quote(t) for t in by)}) WHERE \"state\" != 'resolved'{outer_group}")


def quote(name: str) -> str:
    return f'"{name}"'
