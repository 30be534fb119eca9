"""The directory ``meterwatch dashboards build`` writes, which Grafana mounts as its provisioning dir.

    OUT/datasources/meterwatch.yaml        the InfluxDB (InfluxQL) data source
    OUT/dashboards/meterwatch.yaml         a file provider, into one folder
    OUT/dashboards/meterwatch/<uid>.json   the five dashboards
    OUT/rollups.influxql                   the continuous queries, for the influx shell

Mount it as is: ``-v OUT:/etc/grafana/provisioning``.  Grafana reads the
store as ``grafana.reader_user``, an InfluxDB user granted READ on the
database only (docs/dashboards.md shows how to create it), never as the
collector's writing user: a dashboard query that went wrong cannot write or
drop anything.  Its password is not written: the data source reads
``$METERWATCH_GRAFANA__READER_PASSWORD`` from Grafana's environment
(Grafana expands variables in provisioning files).  Queries go over GET,
which InfluxDB reserves for reading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from dashboards.boards import all_boards
from dashboards.common import AnalyticsFacts
from dashboards.rollups import ROLLUPS
from dashboards.validate import structural_problems
from meterwatch.settings import Settings

PROVIDER = "meterwatch"
READER_PASSWORD_ENV = "METERWATCH_GRAFANA__READER_PASSWORD"


@dataclass
class Built:
    dashboards: dict[str, dict[str, Any]]  # uid -> dashboard JSON
    datasource: dict[str, Any]
    files: list[Path]


def datasource_ref(settings: Settings) -> dict[str, str]:
    return {"type": "influxdb", "uid": settings.grafana.datasource_uid}


def influx_http_url(settings: Settings) -> tuple[str, str]:
    """(HTTP URL, database) of the store as Grafana should reach it."""
    parts = urlsplit(settings.store)
    if not parts.scheme.startswith("influxdb"):
        raise ValueError(f"dashboards read InfluxDB; the store is {parts.scheme}:// (set METERWATCH_STORE "
                         "to influxdb://host:8086/db, or grafana.influx_url)")
    database = parts.path.strip("/") or "meterwatch"
    if settings.grafana.influx_url:
        return settings.grafana.influx_url, database
    scheme = "https" if parts.scheme in ("influxdbs", "influxdb+https") else "http"
    return f"{scheme}://{parts.hostname}:{parts.port or 8086}", database


def datasource(settings: Settings) -> dict[str, Any]:
    url, database = influx_http_url(settings)
    source: dict[str, Any] = {
        "name": settings.grafana.datasource_name, "uid": settings.grafana.datasource_uid, "type": "influxdb",
        "access": "proxy", "url": url, "isDefault": True,
        "jsonData": {"dbName": database, "httpMode": "GET", "version": "InfluxQL", "timeInterval": "15m"},
    }
    if settings.grafana.reader_user:
        source["user"] = settings.grafana.reader_user
        source["secureJsonData"] = {"password": f"${READER_PASSWORD_ENV}"}
    return source


def render(settings: Settings, facts: AnalyticsFacts) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Dashboard JSON by uid, and the data source; raises if the structure is broken."""
    boards = all_boards(settings, facts)
    ref = datasource_ref(settings)
    docs = {b.uid: b.to_json(ref) for b in boards}
    problems = structural_problems(boards, {settings.grafana.datasource_uid}, docs.values())
    if problems:
        raise ValueError("dashboards are broken:\n  " + "\n  ".join(problems))
    return docs, datasource(settings)


def build(settings: Settings, out: Path, facts: AnalyticsFacts) -> Built:
    docs, source = render(settings, facts)
    folder = out / "dashboards" / PROVIDER
    folder.mkdir(parents=True, exist_ok=True)
    (out / "datasources").mkdir(parents=True, exist_ok=True)
    files = []
    for uid, doc in docs.items():
        path = folder / f"{uid}.json"
        path.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        files.append(path)
    files.append(_yaml(out / "datasources" / f"{PROVIDER}.yaml", {"apiVersion": 1, "datasources": [source]}))
    files.append(_yaml(out / "dashboards" / f"{PROVIDER}.yaml", {"apiVersion": 1, "providers": [{
        "name": PROVIDER, "orgId": 1, "type": "file", "folder": settings.grafana.folder_title,
        "folderUid": settings.grafana.folder_uid, "disableDeletion": False, "allowUiUpdates": False,
        "updateIntervalSeconds": 60,
        "options": {"path": f"{settings.grafana.provisioning_path.rstrip('/')}/dashboards/{PROVIDER}"}}]}))
    _, database = influx_http_url(settings)
    cq = out / "rollups.influxql"
    cq.write_text("".join(r.continuous_query(database) + ";\n" for r in ROLLUPS), encoding="utf-8")
    files.append(cq)
    return Built(docs, source, files)


def _yaml(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
