"""采集健康 Collector health: is everything the gateways send arriving and being stored?

The collector writes its counters (totals since start) every
``metrics_interval_s``; rates are their non-negative derivative, so a
restart (counters back to zero) is not a negative spike.
"""

from __future__ import annotations

from collections.abc import Mapping

from dashboards.common import matches, open_alerts
from dashboards.grafana import Dashboard, Panel, Query, Variable

INSTANCE = matches("instance", "instance")
INSTANCE_VARIABLE = Variable("instance", "采集实例 Collector", 'SHOW TAG VALUES FROM "collector" WITH KEY = "instance"',
                             multi=True, include_all=True)


def _rate(field: str) -> str:
    return f'non_negative_derivative(last("{field}"), 1m) AS "{field}"'


def _latest(title: str, expr: str, column: str, unit: str, thresholds=()) -> Panel:
    return Panel(title, "stat", (Query(
        f'SELECT {expr} AS "{column}" FROM "collector" WHERE {INSTANCE} AND $timeFilter GROUP BY "instance"',
        (column,), tags=("instance",), legend="$tag_instance"),), width=6, height=4, unit=unit,
        thresholds=thresholds)


def _series(title: str, expr: str, column: str, unit: str) -> Panel:
    return Panel(title, "timeseries", (Query(
        f'SELECT {expr} AS "{column}" FROM "collector" WHERE {INSTANCE} AND $timeFilter '
        'GROUP BY time($__interval), "instance" fill(none)', (column,), tags=("instance",),
        legend="$tag_instance"),), width=8, unit=unit, min_interval="10s")


def board(rules: Mapping[str, str]) -> Dashboard:
    return Dashboard(
        "mw-collector", "采集健康 Collector health",
        "接收、存储、拒收、缓存、延迟与静默设备 Messages in, stored, rejected, spool, lag and silent devices",
        rows=(
            (_latest("连接 Connected", 'last("connected")', "connected", "bool_on_off",
                     thresholds=((None, "red"), (1, "green"))),
             _latest("磁盘缓存 Spool", 'last("spool_bytes")', "spool_bytes", "bytes",
                     thresholds=((None, "green"), (1, "orange"))),
             _latest("延迟 Lag", 'last("lag")', "lag", "s", thresholds=((None, "green"), (60, "orange"), (600, "red"))),
             Panel("静默设备 Silent devices", "stat", (Query(
                 open_alerts('count("state") AS "silent"', where="\"rule\" = 'silent'"), ("silent",)),),
                 width=6, height=4, thresholds=((None, "green"), (1, "orange")))),
            (Panel("每分钟消息 Messages per minute: in, stored, rejected, duplicates", "timeseries", (Query(
                f'SELECT {_rate("received")}, {_rate("stored")}, {_rate("rejected")}, {_rate("duplicates")} '
                f'FROM "collector" WHERE {INSTANCE} AND $timeFilter GROUP BY time($__interval), "instance" fill(none)',
                ("received", "stored", "rejected", "duplicates"), tags=("instance",)),), min_interval="10s"),
             Panel("拒收原因 Rejected, by reason", "timeseries", (Query(
                 'SELECT count("topic") AS "rejected" FROM "reject" WHERE $timeFilter '
                 'GROUP BY time($__interval), "reason" fill(none)', ("rejected",), tags=("reason",),
                 legend="$tag_reason"),), min_interval="1m", options={"drawStyle": "bars"})),
            (_series("磁盘缓存 Spool bytes", 'max("spool_bytes")', "spool_bytes", "bytes"),
             _series("延迟 Lag: reading time to store", 'max("lag")', "lag", "s"),
             _series("写入耗时 Store write time", 'mean("write_ms")', "write_ms", "ms")),
            (Panel("拒收明细 Rejected messages, latest", "table", (Query(
                'SELECT "reason", "institution", "device", "topic", "detail" FROM "reject" '
                "WHERE $timeFilter ORDER BY time DESC LIMIT 200", ("reason", "topic", "detail"), table=True),),
                height=9, description="完整载荷保存在 reject 表 The whole payload is kept in the reject measurement"),
             Panel("静默设备清单 Silent devices", "table", (Query(
                 open_alerts('"since" * 1000 AS "since", "message"', where="\"rule\" = 'silent'", fields=("since", "message"),
                             group=("rule", "institution", "device")),
                 ("since", "message"), tags=("institution", "device"), table=True),), height=9, mappings=rules,
                 overrides=({"matcher": {"id": "byName", "options": "since"},
                             "properties": [{"id": "unit", "value": "dateTimeAsIso"}]},))),
        ),
        variables=(INSTANCE_VARIABLE,),
        time_from="now-6h", refresh="30s",
    )
