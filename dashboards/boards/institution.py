"""单位详情 Institution: one institution's meters, its year against last year and its quota.

Picked city -> type -> institution (by Chinese name; a hidden variable
carries the id).  Hours come from raw readings (one institution, a few
meters: cheap), days and months from the per-device rollup.
"""

from __future__ import annotations

from collections.abc import Mapping

from dashboards.common import (
    CATEGORIES,
    DAILY,
    INDICATORS,
    INSTITUTION_VARIABLE,
    KINDS,
    NAME_VARIABLE,
    SEVERITIES,
    STATES,
    THIS_MONTH,
    THIS_YEAR,
    TYPE_VARIABLE,
    city_variable,
    labels,
    matches,
)
from dashboards.grafana import Dashboard, Panel, Query, Variable

INST = matches("institution", "institution")
INDICATOR = matches("indicator", "indicator")
INDICATOR_VARIABLE = Variable("indicator", "指标 Indicator", "", options=tuple(INDICATORS.items()))
LATEST = "time > now() - 2d"
UNITS = {"electricity": "kwatth", "water": "m3", "heat": "suffix:GJ"}


def _hourly(kind: str) -> Panel:
    return Panel(f"逐时用量（按表）{KINDS[kind]}, hourly by meter", "timeseries", (Query(
        f'SELECT sum("consumption") FROM "reading" WHERE {INST} AND "kind" = \'{kind}\' AND $timeFilter '
        'GROUP BY time($__interval), "device" fill(0)', ("sum",), tags=("device",), legend="$tag_device"),),
        width=8, unit=UNITS[kind], min_interval="1h",
        options={"legend": {"displayMode": "list", "placement": "bottom"}})


def _daily(title: str, time_shift: str | None) -> Panel:
    return Panel(title, "timeseries", (Query(
        f'SELECT sum("consumption") FROM "consumption_1d" WHERE {INST} AND $timeFilter '
        f'GROUP BY {DAILY}, "kind" fill(none)', ("sum",), tags=("kind",), legend="$tag_kind"),),
        time_from=THIS_YEAR, time_shift=time_shift, mappings=KINDS,
        options={"drawStyle": "bars"}, overrides=tuple(
            {"matcher": {"id": "byName", "options": kind}, "properties": [{"id": "unit", "value": unit}]}
            for kind, unit in UNITS.items()))


def _standing(title: str, expr: str, column: str, unit: str, thresholds=()) -> Panel:
    return Panel(title, "stat", (Query(
        f'SELECT {expr} AS "{column}" FROM "statistic" WHERE {INST} AND {INDICATOR} AND {LATEST}',
        (column,)),), width=6, height=4, unit=unit, decimals=1, thresholds=thresholds)


COST = "\"indicator\" = 'cost'"  # the statistic's budget row: use = yuan so far, quota_constraint = budget


def _budget(title: str, expr: str, column: str, unit: str, thresholds=()) -> Panel:
    return Panel(title, "stat", (Query(
        f'SELECT {expr} AS "{column}" FROM "statistic" WHERE {INST} AND {COST} AND {LATEST}', (column,)),),
        width=6, height=4, unit=unit, decimals=0, thresholds=thresholds)


def board(cities: Mapping[str, str], rules: Mapping[str, str]) -> Dashboard:
    return Dashboard(
        "mw-institution", "单位详情 Institution",
        "一个单位的表计、同比与定额进度 One institution: its meters, this year against last, its quota",
        rows=(
            (_standing("本年用量 Use this year", 'last("use")', "use", "none"),
             _standing("定额进度 Quota used so far", 'last("use") / last("quota_prorated") * 100', "percent",
                       "percent", thresholds=((None, "green"), (90, "orange"), (100, "red"))),
             _standing("年末预测 / 约束值 Projected / constraint", 'last("projected") / last("quota_constraint") * 100',
                       "projected_percent", "percent", thresholds=((None, "green"), (90, "orange"), (100, "red"))),
             _standing("同比 Year on year", 'last("yoy") * 100', "yoy_percent", "percent")),
            (_budget("本年能源费用 Energy cost this year", 'last("use")', "cost_yuan", "currencyCNY"),
             _budget("已用预算 / 时间进度 Budget used / time elapsed", 'last("use") / last("quota_prorated") * 100',
                     "budget_pace", "percent", thresholds=((None, "green"), (90, "orange"), (100, "red"))),
             _budget("预计全年 / 预算 Projected / budget", 'last("projected") / last("quota_constraint") * 100',
                     "budget_projected", "percent", thresholds=((None, "green"), (90, "orange"), (100, "red"))),
             _budget("预计超支(+)/节约(-) Projected overrun", 'last("projected") - last("quota_constraint")',
                     "overrun_yuan", "currencyCNY", thresholds=((None, "green"), (0, "red")))),
            (_hourly("electricity"), _hourly("water"), _hourly("heat")),
            (_daily("本年逐日用量 Daily use this year", None),
             _daily("去年同期逐日用量 The same days last year", "1y")),
            (Panel("本月各表用量 This month by meter", "bargauge", (Query(
                f'SELECT sum("consumption") AS "consumption" FROM "consumption_1d" WHERE {INST} AND $timeFilter '
                'GROUP BY "device", "kind"', ("consumption",), tags=("device", "kind"), legend="$tag_device"),),
                time_from=THIS_MONTH, options={"orientation": "horizontal"}, decimals=0),
             Panel("定额进度 Quota progress", "timeseries", (Query(
                 'SELECT last("use") AS "累计 use", last("quota_prorated") AS "按进度定额 pro-rated", '
                 'last("quota_constraint") AS "约束值 constraint", last("quota_guide") AS "引导值 guide", '
                 'last("projected") AS "年末预测 projected" FROM "statistic" '
                 f"WHERE {INST} AND {INDICATOR} AND $timeFilter GROUP BY {DAILY} fill(none)",
                 ("累计 use", "按进度定额 pro-rated", "约束值 constraint", "引导值 guide", "年末预测 projected")),),
                 time_from=THIS_YEAR, description="所选指标；约束值与引导值为全年定额 The selected indicator; "
                                                  "constraint and guide are the annual quota (kgce per GB/T 2589, "
                                                  "kWh, m³)")),
            (Panel("本单位告警 Its alerts", "table", (Query(
                'SELECT "state", "rule", "device", "severity", "value", "unit", "message" FROM "alert" '
                f"WHERE {INST} AND $timeFilter ORDER BY time DESC LIMIT 200",
                ("state", "rule", "device", "value", "message"), table=True),),
                time_from="30d", mappings=labels(rules, STATES, SEVERITIES)),
             Panel("本单位垃圾分类 Its garbage, daily by category", "timeseries", (Query(
                 f'SELECT sum("weight_kg") FROM "weighing" WHERE {INST} AND $timeFilter '
                 f'GROUP BY {DAILY}, "category" fill(0)', ("sum",), tags=("category",), legend="$tag_category"),),
                 unit="masskg", time_from="30d", mappings=CATEGORIES, options={"stacking": {"mode": "normal"}})),
            (Panel("各项指标 Indicators this year", "table", (Query(
                'SELECT last("use") AS "use", last("per_capita") AS "per_capita", last("per_m2") AS "per_m2", '
                'last("rank_type") AS "rank_in_type", last("quota_status") AS "status", '
                f'last("crossing") AS "crossing" FROM "statistic" WHERE {INST} AND {LATEST} GROUP BY "indicator"',
                ("use", "per_capita", "per_m2", "rank_in_type"), tags=("indicator",), table=True),),
                width=24, height=6, mappings=labels(INDICATORS, {"guide": "达到引导值 Within guide",
                                                                 "between": "引导值与约束值之间 Between",
                                                                 "over": "超约束值 Over constraint"})),),
        ),
        variables=(city_variable(cities), TYPE_VARIABLE, NAME_VARIABLE, INSTITUTION_VARIABLE, INDICATOR_VARIABLE),
        time_from="now-7d",
    )
