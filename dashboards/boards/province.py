"""全省概览 Province overview: the energy office's first screen.

Consumption comes from the daily rollups (a year of the province in a few
thousand points); rankings and quota standing from the daily ``statistic``
analytics writes; open alerts from the alert events.
"""

from __future__ import annotations

from collections.abc import Mapping

from dashboards.common import (
    CATEGORIES,
    DAILY,
    KINDS,
    THIS_MONTH,
    THIS_YEAR,
    TODAY,
    TYPE_VARIABLE,
    TYPES,
    city_labels,
    city_variable,
    labels,
    matches,
    open_alerts,
)
from dashboards.grafana import Dashboard, Panel, Query

FILTER = f'{matches("city", "city")} AND {matches("type", "type")}'
LATEST_STATISTIC = "time > now() - 2d"  # the statistic is one point per institution and day


def _total(title: str, kind: str, unit: str, period: str) -> Panel:
    return Panel(title, "stat", (Query(
        f'SELECT sum("consumption") AS "total" FROM "consumption_city_1d" '
        f"WHERE \"kind\" = '{kind}' AND {FILTER} AND $timeFilter", ("total",)),),
        width=4, height=4, unit=unit, time_from=period, decimals=0)


def _ranking(title: str, func: str, intensity: str, unit: str) -> Panel:
    return Panel(title, "table", (Query(
        f'SELECT {func}("{intensity}", "name", 10) AS "{intensity}" FROM "statistic" '
        f"WHERE \"indicator\" = 'energy' AND {FILTER} AND {LATEST_STATISTIC}",
        (intensity, "name"), table=True),), width=6, height=9, unit=unit, decimals=1,
        transformations=({"id": "organize", "options": {"excludeByName": {"Time": True}}},))


PERCENT_COLOURS = ({"id": "unit", "value": "percent"},
                   {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                   {"id": "thresholds", "value": {"mode": "absolute", "steps": [
                       {"value": None, "color": "green"}, {"value": 90, "color": "orange"}, {"value": 100, "color": "red"}]}})
# The budget standing is the statistic's `cost` row: use = yuan so far, quota_constraint = budget,
# quota_prorated = the budget's share of the year so far, projected = year-end cost.
BUDGET_BY_INSTITUTION = (
    'SELECT last("use") AS "cost", last("quota_constraint") AS "budget", last("quota_prorated") AS "prorated", '
    'last("projected") AS "projected" FROM "statistic" '
    f"WHERE \"indicator\" = 'cost' AND {FILTER} AND {LATEST_STATISTIC} GROUP BY \"institution\", \"name\", \"city\"")


def _budget_row(places: Mapping[str, str]) -> tuple[Panel, ...]:
    return (
        Panel("预算执行（按市）Budget used against time elapsed, by city", "table", (Query(
            'SELECT sum("cost") AS "cost_yuan", sum("budget") AS "budget_yuan", '
            'sum("cost") / sum("budget") * 100 AS "used", sum("prorated") / sum("budget") * 100 AS "elapsed", '
            f'sum("projected") AS "projected_yuan" FROM ({BUDGET_BY_INSTITUTION}) GROUP BY "city"',
            ("cost_yuan", "budget_yuan", "used", "elapsed", "projected_yuan"), tags=("city",), table=True),),
            mappings=places, decimals=0, width=12, height=8,
            description="已用预算 used = 本年已支出 / 预算；进度 elapsed = 按季节曲线应已支出的份额。"
                        "used above elapsed means spending ahead of the budget",
            overrides=({"matcher": {"id": "byName", "options": "used"}, "properties": list(PERCENT_COLOURS)},
                       {"matcher": {"id": "byName", "options": "elapsed"},
                        "properties": [{"id": "unit", "value": "percent"}]})),
        Panel("预计超支最多 Largest projected overruns", "table", (Query(
            f'SELECT top("overrun", "name", 10) AS "overrun_yuan" FROM (SELECT "projected" - "budget" AS "overrun" '
            f'FROM ({BUDGET_BY_INSTITUTION}) GROUP BY "name")', ("overrun_yuan", "name"), table=True),),
            width=12, height=8, unit="currencyCNY", decimals=0,
            description="预计全年费用减预算 Projected year-end cost minus budget (yuan)",
            transformations=({"id": "organize", "options": {"excludeByName": {"Time": True}}},)),
    )


def board(cities: Mapping[str, str], rules: Mapping[str, str]) -> Dashboard:
    places = labels(city_labels(cities), TYPES, KINDS)
    return Dashboard(
        "mw-province", "全省概览 Province overview",
        "用能、定额、排名、告警与垃圾分类 Consumption against quota, rankings, alerts and garbage sorting",
        rows=(
            (_total("今日用电 Electricity today", "electricity", "kwatth", TODAY),
             _total("本月用电 Electricity this month", "electricity", "kwatth", THIS_MONTH),
             _total("本年用电 Electricity this year", "electricity", "kwatth", THIS_YEAR),
             _total("今日用水 Water today", "water", "m3", TODAY),
             _total("本月用水 Water this month", "water", "m3", THIS_MONTH),
             _total("本年用水 Water this year", "water", "m3", THIS_YEAR)),
            (Panel("本年各市分类用量 This year by city, type and kind", "table", (Query(
                f'SELECT sum("consumption") AS "consumption" FROM "consumption_city_1d" WHERE {FILTER} '
                'AND $timeFilter GROUP BY "city", "type", "kind"', ("consumption",),
                tags=("city", "type", "kind"), table=True),), time_from=THIS_YEAR, mappings=places, decimals=0,
                height=10),
             Panel("综合能耗对照定额（按进度）Energy against the pro-rated quota, by city and type", "table", (Query(
                 'SELECT sum("use") AS "use_kgce", sum("quota") AS "quota_kgce", '
                 'sum("use") / sum("quota") * 100 AS "percent" FROM (SELECT last("use") AS "use", '
                 'last("quota_prorated") AS "quota" FROM "statistic" '
                 f"WHERE \"indicator\" = 'energy' AND {FILTER} AND {LATEST_STATISTIC} "
                 'GROUP BY "institution", "city", "type") GROUP BY "city", "type"',
                 ("use_kgce", "quota_kgce", "percent"), tags=("city", "type"), table=True),),
                 mappings=places, decimals=1, height=10,
                 description="定额按用能季节曲线折算到今天 The annual constraint pro-rated to today by the "
                             "type's seasonal profile; over 100% means ahead of the quota",
                 overrides=({"matcher": {"id": "byName", "options": "percent"},
                             "properties": [{"id": "unit", "value": "percent"},
                                            {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                                            {"id": "thresholds", "value": {"mode": "absolute", "steps": [
                                                {"value": None, "color": "green"}, {"value": 90, "color": "orange"},
                                                {"value": 100, "color": "red"}]}}]},))),
            (Panel("逐日用电（按市）Daily electricity by city", "timeseries", (Query(
                'SELECT sum("consumption") FROM "consumption_city_1d" '
                f"WHERE \"kind\" = 'electricity' AND {FILTER} AND $timeFilter GROUP BY {DAILY}, \"city\" fill(none)",
                ("sum",), tags=("city",), legend="$tag_city"),), unit="kwatth", mappings=places),
             Panel("逐日用水（按市）Daily water by city", "timeseries", (Query(
                 'SELECT sum("consumption") FROM "consumption_city_1d" '
                 f"WHERE \"kind\" = 'water' AND {FILTER} AND $timeFilter GROUP BY {DAILY}, \"city\" fill(none)",
                 ("sum",), tags=("city",), legend="$tag_city"),), unit="m3", mappings=places)),
            _budget_row(places),
            (_ranking("人均能耗最低 Lowest energy per capita", "bottom", "per_capita", "kgce/人"),
             _ranking("人均能耗最高 Highest energy per capita", "top", "per_capita", "kgce/人"),
             _ranking("单位面积能耗最低 Lowest energy per m²", "bottom", "per_m2", "kgce/m²"),
             _ranking("单位面积能耗最高 Highest energy per m²", "top", "per_m2", "kgce/m²")),
            (Panel("未关闭告警（按规则）Open alerts by rule", "bargauge", (Query(
                open_alerts('count("state") AS "open"', group=("rule",)), ("open",), tags=("rule",),
                legend="$tag_rule"),), mappings=rules, options={"orientation": "horizontal"}),
             Panel("本年垃圾分类 Garbage collected this year, by category", "piechart", (Query(
                 'SELECT sum("weight_kg") AS "weight_kg" FROM "weighing_city_1d" '
                 f'WHERE {matches("city", "city")} AND $timeFilter GROUP BY "category"', ("weight_kg",),
                 tags=("category",), legend="$tag_category"),), unit="masskg", time_from=THIS_YEAR,
                 mappings=CATEGORIES, options={"reduceOptions": {"calcs": ["sum"]}, "legend": {"displayMode": "table",
                                                                                               "values": ["percent"]}})),
        ),
        variables=(city_variable(cities), TYPE_VARIABLE),
        time_from="now-30d",
    )
