"""``dashboards push`` against a small HTTP server that answers like Grafana and records every call."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dashboards.push import push
from meterwatch_cli.main import main
from meterwatch.settings import GrafanaSettings, Settings
from scenarios.facts import analytics_facts


class FakeGrafana(ThreadingHTTPServer):
    """Folders, data sources and dashboards by uid, as Grafana's HTTP API keeps them."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.calls: list[tuple[str, str, str]] = []  # method, path, Authorization header
        self.folders: dict[str, dict] = {}
        self.datasources: dict[str, dict] = {}
        self.dashboards: dict[str, dict] = {}


class _Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args) -> None:  # quiet
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> dict:
        self.server.calls.append((self.command, self.path, self.headers.get("Authorization", "")))
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else {}

    def do_GET(self) -> None:
        self._record()
        kind, _, uid = self.path.removeprefix("/api/").partition("/")
        table = {"folders": self.server.folders, "datasources": self.server.datasources}.get(kind, {})
        uid = uid.removeprefix("uid/")
        if uid in table:
            self._reply(200, table[uid])
        else:
            self._reply(404, {"message": "not found"})

    def do_POST(self) -> None:
        body = self._record()
        if self.path == "/api/folders":
            self.server.folders[body["uid"]] = body
            self._reply(200, body)
        elif self.path == "/api/datasources":
            self.server.datasources[body["uid"]] = body
            self._reply(200, {"datasource": body})
        elif self.path == "/api/dashboards/db":
            uid = body["dashboard"]["uid"]
            if uid in self.server.dashboards and not body.get("overwrite"):
                self._reply(412, {"message": "exists"})
                return
            self.server.dashboards[uid] = body
            self._reply(200, {"uid": uid, "status": "success", "version": 1})
        else:
            self._reply(404, {"message": "no such API"})


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _settings(grafana: FakeGrafana) -> Settings:
    return Settings(store="influxdb://127.0.0.1:8086/meterwatch", store_user="meterwatch", store_password="writer-pw",
                    grafana=GrafanaSettings(url=f"http://127.0.0.1:{grafana.server_port}", token="glsa_token",
                                            reader_password="reader-pw"))


def test_push_creates_folder_and_datasource_once_and_overwrites_dashboards(grafana: FakeGrafana) -> None:
    first = push(_settings(grafana), analytics_facts(Settings()))
    assert first.folder_created and first.datasource_created
    assert sorted(grafana.dashboards) == ["mw-alerts", "mw-collector", "mw-garbage", "mw-institution", "mw-province"]
    assert all(b["folderUid"] == "meterwatch" and b["overwrite"] for b in grafana.dashboards.values())
    source = grafana.datasources["meterwatch-influxdb"]
    # The read-only user, over GET, with its password itself (the API does not expand $VARIABLES).
    assert (source["user"], source["jsonData"]["httpMode"]) == ("grafana", "GET")
    assert source["secureJsonData"] == {"password": "reader-pw"}
    assert "writer-pw" not in json.dumps([grafana.datasources, grafana.dashboards])
    assert all(auth == "Bearer glsa_token" for _, _, auth in grafana.calls)
    calls = len(grafana.calls)

    second = push(_settings(grafana), analytics_facts(Settings()))
    assert not second.folder_created and not second.datasource_created
    assert len(grafana.dashboards) == 5  # same uids: replaced, not duplicated
    posts = [path for method, path, _ in grafana.calls[calls:] if method == "POST"]
    assert posts == ["/api/dashboards/db"] * 5


def test_push_command_and_its_log_keep_the_token_secret(grafana: FakeGrafana, monkeypatch, capsys, caplog) -> None:
    monkeypatch.setenv("METERWATCH_STORE", "influxdb://127.0.0.1:8086/meterwatch")
    monkeypatch.setenv("METERWATCH_GRAFANA__URL", f"http://127.0.0.1:{grafana.server_port}")
    monkeypatch.setenv("METERWATCH_GRAFANA__TOKEN", "glsa_secret")
    assert main(["dashboards", "push"]) == 0
    out = capsys.readouterr()
    assert "pushed 5 dashboards" in out.out
    assert "glsa_secret" not in out.out + out.err + caplog.text
    assert len(grafana.dashboards) == 5


def test_push_without_a_reader_password_sends_none_and_says_so(grafana: FakeGrafana, caplog) -> None:
    settings = _settings(grafana)
    settings.grafana.reader_password = None
    push(settings, analytics_facts(settings))
    source = grafana.datasources["meterwatch-influxdb"]
    assert source["user"] == "grafana" and "secureJsonData" not in source  # never the literal placeholder
    assert "METERWATCH_GRAFANA__READER_PASSWORD" in caplog.text
