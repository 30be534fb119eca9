"""垃圾分类 Garbage sorting: who weighs what, and whether recyclables reach the target share."""

from __future__ import annotations

from collections.abc import Mapping

from dashboards.common import CATEGORIES, DAILY, INSTITUTION_VARIABLE, city_variable, matches
from dashboards.grafana import Dashboard, Panel, Query, Variable
from meterwatch.const import UNKNOWN

CITY = f'{matches("city", "city")} AND $timeFilter'
INST = f'{matches("institution", "institution")} AND $timeFilter'
# City totals read the daily rollup (a province has ~30,000 card series: a regex over them is slow); the
# breakdowns by zone, owner unit and cleaner are one institution's, read from its raw weighings.
NAME = Variable("name", "单位 Institution",
                f'SHOW TAG VALUES FROM "statistic" WITH KEY = "name" WHERE {matches("city", "city")}')


def _by(tag: str, title: str) -> Panel:
    return Panel(title, "bargauge", (Query(
        f'SELECT sum("weight_kg") AS "weight_kg" FROM "weighing" WHERE {INST} GROUP BY "{tag}"',
        ("weight_kg",), tags=(tag,), legend=f"$tag_{tag}"),), width=8, height=10, unit="masskg", decimals=0,
        options={"orientation": "horizontal", "displayMode": "basic"})


def board(cities: Mapping[str, str], target_share: float) -> Dashboard:
    target = round(target_share * 100, 1)
    return Dashboard(
        "mw-garbage", "垃圾分类 Garbage sorting",
        "按类别、区域、责任单位与保洁员的称重；可回收物占比 Weighings by category, zone, owner unit and cleaner",
        rows=(
            (Panel("总重量 Total weight", "stat", (Query(
                f'SELECT sum("weight_kg") AS "weight_kg" FROM "weighing_city_1d" WHERE {CITY}', ("weight_kg",)),),
                width=6, height=5, unit="masskg", decimals=0),
             Panel(f"可回收物占比 Recyclable share (target {target}%)", "stat", (Query(
                 'SELECT sum("recyclable") / sum("total") * 100 AS "share" FROM '
                 f'(SELECT "weight_kg" AS "total" FROM "weighing_city_1d" WHERE {CITY}), '
                 '(SELECT "weight_kg" AS "recyclable" FROM "weighing_city_1d" '
                 f"WHERE \"category\" = 'recyclable' AND {CITY})", ("share",)),), width=6, height=5, unit="percent",
                 decimals=1, thresholds=((None, "red"), (target, "green"))),
             Panel("称重次数 Weighings", "stat", (Query(
                 f'SELECT sum("weighings") AS "weighings" FROM "weighing_city_1d" WHERE {CITY}', ("weighings",)),),
                 width=6, height=5),
             Panel("未登记卡称重 Weighings with unknown cards", "stat", (Query(
                 f'SELECT sum("weighings") AS "unknown" FROM "weighing_city_1d" WHERE "category" = \'{UNKNOWN}\' '
                 f"AND {CITY}", ("unknown",)),), width=6, height=5, thresholds=((None, "green"), (1, "orange")))),
            (Panel("逐日重量（按类别）Daily weight by category", "timeseries", (Query(
                f'SELECT sum("weight_kg") FROM "weighing_city_1d" WHERE {CITY} GROUP BY {DAILY}, "category" fill(0)',
                ("sum",), tags=("category",), legend="$tag_category"),), width=16, unit="masskg",
                mappings=CATEGORIES, options={"drawStyle": "bars", "stacking": {"mode": "normal"}}),
             Panel("按类别 By category", "piechart", (Query(
                 f'SELECT sum("weight_kg") AS "weight_kg" FROM "weighing_city_1d" WHERE {CITY} GROUP BY "category"',
                 ("weight_kg",), tags=("category",), legend="$tag_category"),), width=8, unit="masskg",
                 mappings=CATEGORIES)),
            (_by("zone", "本单位按区域 The institution, by zone"),
             _by("owner_unit", "本单位按责任单位 The institution, by owner unit"),
             _by("cleaner", "本单位按保洁员 The institution, by cleaner")),
            (Panel("未登记卡 Unknown cards", "table", (Query(
                'SELECT "card", "weight_kg", "institution", "scale" FROM "weighing" '
                f"WHERE \"category\" = '{UNKNOWN}' AND {CITY} ORDER BY time DESC LIMIT 200",
                ("card", "weight_kg", "institution", "scale"), table=True),), width=24, height=8,
                description="卡号不在登记表中：新保洁员或丢失的卡 Cards not in cards.csv: a new cleaner, a lost card"),),
        ),
        variables=(city_variable(cities), NAME, INSTITUTION_VARIABLE),
        time_from="now-30d",
    )
