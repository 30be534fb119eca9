"""泄漏与告警 Leaks and alerts: what is open now, what happened, and how fast it was dealt with."""

from __future__ import annotations

from collections.abc import Mapping

from dashboards.common import DAILY, SEVERITIES, STATES, labels, matches, open_alerts
from dashboards.grafana import Dashboard, Panel, Query, Variable

RULE = matches("rule", "rule")
LEAK_DEVICE = Variable("leak_device", "漏水表 Leaking meter",
                       'SHOW TAG VALUES FROM "alert" WITH KEY = "device" WHERE "rule" = \'leak\'',
                       multi=True, include_all=True, all_value=None)


def rule_variable(rules: Mapping[str, str]) -> Variable:
    return Variable("rule", "规则 Rule", "", multi=True, include_all=True, options=tuple(rules.items()))


def board(rules: Mapping[str, str]) -> Dashboard:
    names = labels(rules, STATES, SEVERITIES)
    return Dashboard(
        "mw-alerts", "泄漏与告警 Leaks and alerts",
        "未关闭告警、漏水夜间流量与处置时长 Open alerts, night flow of leaking buildings, time to resolve",
        rows=(
            (Panel("未关闭告警 Open alerts", "stat", (Query(
                open_alerts('count("state") AS "open"', where=RULE), ("open",)),), width=6, height=5,
                thresholds=((None, "green"), (1, "orange"), (20, "red"))),
             Panel("按规则 Open, by rule", "bargauge", (Query(
                 open_alerts('count("state") AS "open"', where=RULE, group=("rule",)), ("open",), tags=("rule",),
                 legend="$tag_rule"),), width=9, height=5, mappings=names, options={"orientation": "horizontal"}),
             Panel("按严重程度 Open, by severity", "bargauge", (Query(
                 open_alerts('count("state") AS "open"', where=RULE, by=("rule", "device", "severity"),
                             group=("severity",)), ("open",), tags=("severity",), legend="$tag_severity"),),
                 width=9, height=5, mappings=names, options={"orientation": "horizontal"})),
            (Panel("未关闭告警清单 Open alerts, latest event of each", "table", (Query(
                open_alerts('"state", "severity", "value", "unit", "since" * 1000 AS "since", "message"', where=RULE,
                            fields=("severity", "value", "unit", "since", "message"),
                            group=("rule", "institution", "device")),
                ("state", "value", "since", "message"), tags=("rule", "institution", "device"), table=True),),
                width=24, height=9, mappings=names,
                overrides=({"matcher": {"id": "byName", "options": "since"},
                            "properties": [{"id": "unit", "value": "dateTimeAsIso"}]},)),),
            (Panel("最近告警事件 Recent alert events", "table", (Query(
                'SELECT "state", "rule", "institution", "device", "severity", "value", "unit", "message" '
                f'FROM "alert" WHERE {RULE} AND $timeFilter ORDER BY time DESC LIMIT 200',
                ("state", "rule", "device", "message"), table=True),), width=24, height=9, mappings=names),),
            (Panel("漏水单位夜间流量 Night flow of leaking buildings", "timeseries", (Query(
                'SELECT max("value") FROM "alert" '
                f"WHERE \"rule\" = 'leak' AND $timeFilter GROUP BY {DAILY}, \"institution\", \"device\" fill(none)",
                ("max",), tags=("institution", "device"), legend="$tag_institution $tag_device"),),
                unit="m3/h", description="夜间最小流量（告警时测得）Night minimum flow as measured by the leak rule"),
             Panel("漏水表逐时流量 Hourly flow of leaking meters", "timeseries", (Query(
                 f'SELECT sum("consumption") FROM "reading" WHERE {matches("device", "leak_device")} AND $timeFilter '
                 'GROUP BY time($__interval), "device" fill(0)', ("sum",), tags=("device",), legend="$tag_device"),),
                 unit="m3", time_from="7d", min_interval="1h",
                 description="夜里也不归零即为漏水 A leak is flow that never returns to zero at night")),
            (Panel("平均处置时长 Mean time to resolve, by rule", "bargauge", (Query(
                'SELECT mean("age_s") / 3600 AS "hours" FROM "alert" '
                f"WHERE \"state\" = 'resolved' AND {RULE} AND $timeFilter GROUP BY \"rule\"",
                ("hours",), tags=("rule",), legend="$tag_rule"),), unit="h", decimals=1, mappings=names,
                options={"orientation": "horizontal"}),
             Panel("每日新开与恢复 Opened and resolved per day", "timeseries", (
                 Query('SELECT count("age_s") AS "opened" FROM "alert" '
                       f"WHERE \"state\" = 'open' AND {RULE} AND $timeFilter GROUP BY {DAILY} fill(0)", ("opened",)),
                 Query('SELECT count("age_s") AS "resolved" FROM "alert" '
                       f"WHERE \"state\" = 'resolved' AND {RULE} AND $timeFilter GROUP BY {DAILY} fill(0)",
                       ("resolved",))), options={"drawStyle": "bars"})),
        ),
        variables=(rule_variable(rules), LEAK_DEVICE),
        time_from="now-30d",
    )
