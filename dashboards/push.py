"""``meterwatch dashboards push``: the same dashboards into a running Grafana, through its HTTP API.

Idempotent: the folder is created only if missing, the data source only
if no data source has our uid (an operator's edits to it are kept), and
dashboards are saved by uid with ``overwrite`` so a second push replaces,
never duplicates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from dashboards.common import AnalyticsFacts
from dashboards.provisioning import render
from meterwatch.settings import GrafanaSettings, Settings, redact_url

log = logging.getLogger(__name__)


@dataclass
class Pushed:
    folder_created: bool = False
    datasource_created: bool = False
    dashboards: list[str] = field(default_factory=list)


def _exists(call: Any, *args: Any) -> bool:
    try:
        call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return False
        raise
    return True


def _with_reader_password(source: dict[str, Any], g: GrafanaSettings) -> dict[str, Any]:
    """The data source with the reader's password itself: Grafana expands ``$VAR`` only in provisioning files."""
    if "secureJsonData" not in source:
        return source
    if g.reader_password is None:
        log.warning("data source created without a password: set METERWATCH_GRAFANA__READER_PASSWORD",
                    extra={"user": g.reader_user, "grafana": redact_url(g.url)})
        return {k: v for k, v in source.items() if k != "secureJsonData"}
    return {**source, "secureJsonData": {"password": g.reader_password.get_secret_value()}}


def push(settings: Settings, facts: AnalyticsFacts, api: GrafanaApi | None = None) -> Pushed:
    docs, source = render(settings, facts)
    g = settings.grafana
    if api is None:
        token = g.token.get_secret_value() if g.token else None
        api = GrafanaApi.from_url(g.url, credential=token)
    result = Pushed()
    if not _exists(api.folder.get_folder, g.folder_uid):
        api.folder.create_folder(g.folder_title, uid=g.folder_uid)
        result.folder_created = True
    if not _exists(api.datasource.get_datasource_by_uid, g.datasource_uid):
        api.datasource.create_datasource(_with_reader_password(source, g))
        result.datasource_created = True
    for uid, doc in docs.items():
        api.dashboard.update_dashboard({"dashboard": {**doc, "id": None}, "folderUid": g.folder_uid,
                                        "overwrite": True, "message": "meterwatch dashboards push"})
        result.dashboards.append(uid)
        log.info("dashboard pushed", extra={"uid": uid, "grafana": redact_url(g.url)})
    return result
