"""Scheduled reports: due jobs produced once, written, and delivered to a real SMTP server (aiosmtpd) over
STARTTLS with a login; a refused login is retried at the next run, a delivered report never sent twice."""

from __future__ import annotations

import email
import io
import socket
import ssl
import subprocess
from datetime import date

import openpyxl
import pytest

from meterwatch_cli.main import main
from reports.schedule import last_due_period


def test_the_last_due_period():
    assert last_due_period("month", 1, date(2026, 11, 26)).label == "2026-10"
    assert last_due_period("month", 5, date(2026, 11, 1)).label == "2026-09"  # October's is due on 5 November
    assert last_due_period("month", 5, date(2026, 1, 5)).label == "2025-12"
    assert last_due_period("quarter", 1, date(2026, 11, 26)).label == "2026-Q3"
    assert last_due_period("quarter", 10, date(2026, 10, 9)).label == "2026-Q2"
    assert last_due_period("year", 1, date(2027, 1, 1)).label == "2026"
    assert last_due_period("year", 15, date(2027, 1, 14)).label == "2025"


@pytest.fixture
def smtp_server(tmp_path):
    """A real SMTP server on loopback: STARTTLS required before AUTH, one user, messages kept."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(tmp_path / "smtp.key"),
                    "-out", str(tmp_path / "smtp.crt")], check=True, capture_output=True)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "smtp.crt", tmp_path / "smtp.key")
    received: list[bytes] = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            received.append(envelope.original_content or envelope.content)
            return "250 OK"

    def login(server, session, envelope, mechanism, auth_data):
        ok = (auth_data.login, auth_data.password) == (b"mw", b"s3cret")
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=tls, require_starttls=True,
                            authenticator=login, auth_require_tls=True)
    controller.start()
    try:
        yield port, tmp_path / "smtp.crt", received
    finally:
        controller.stop()


def test_due_report_is_written_and_mailed_once(setup, tmp_path, monkeypatch, smtp_server, capsys):
    port, ca, received = smtp_server
    setup()
    out_dir = tmp_path / "reports"
    config = tmp_path / "meterwatch.toml"
    config.write_text(f"""
[reports]
out_dir = "{out_dir}"
[[reports.jobs]]
scope = "city:yinchuan"
period = "month"
day = 1
formats = ["xlsx", "pdf"]
to = ["officer@example.cn"]
[reports.smtp]
host = "127.0.0.1"
port = {port}
user = "mw"
ca_file = "{ca}"
sender = "meterwatch@example.cn"
""", encoding="utf-8")
    at = "2026-11-05T18:00:00+08:00"
    monkeypatch.setenv("METERWATCH_REPORTS__SMTP__PASSWORD", "wrong")
    assert main(["--config", str(config), "report", "--scheduled", "--at", at]) == 1
    err = capsys.readouterr().err
    assert "city:yinchuan 2026-10" in err and "535" in err and "wrong" not in err and received == []
    assert not (out_dir / "city-yinchuan_2026-10.done").exists()  # not delivered: due again at the next run

    monkeypatch.setenv("METERWATCH_REPORTS__SMTP__PASSWORD", "s3cret")
    assert main(["--config", str(config), "report", "--scheduled", "--at", at]) == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["city-yinchuan_2026-10.done", "city-yinchuan_2026-10.pdf",
                                                         "city-yinchuan_2026-10.xlsx"]
    (message,) = received
    mail = email.message_from_bytes(message, policy=email.policy.default)
    assert mail["To"] == "officer@example.cn" and "银川 2026年10月" in mail["Subject"]
    files = {p.get_filename(): p.get_content() for p in mail.iter_attachments()}
    assert set(files) == {"city-yinchuan_2026-10.xlsx", "city-yinchuan_2026-10.pdf"}
    assert files["city-yinchuan_2026-10.pdf"] == (out_dir / "city-yinchuan_2026-10.pdf").read_bytes()
    book = openpyxl.load_workbook(io.BytesIO(files["city-yinchuan_2026-10.xlsx"]))
    rows = {r[0]: r for r in book["1 总量"].iter_rows(min_row=5, values_only=True)}
    assert rows["用电量 (kWh)"][1] == 3107.0 + 31 * 50.0

    assert main(["--config", str(config), "report", "--scheduled", "--at", at]) == 0
    assert len(received) == 1 and "0 scheduled report(s) produced, 0 failed, 1 already done" in capsys.readouterr().err
