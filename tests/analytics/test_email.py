"""Digests by mail, against a real SMTP server (aiosmtpd) started by the test: STARTTLS with a self-signed
certificate made here (openssl), then login; a refused login is abandoned with its reason, never the password."""

from __future__ import annotations

import email
import shutil
import ssl
import subprocess
from email import policy

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from analytics.alerts import load_book
from analytics.runner import evaluate
from analytics.sender import Sender
from benchmarks.servers import free_port
from meterwatch.registry import load_registry
from meterwatch.settings import AnalyticsSettings, SmtpSettings
from meterwatch.store import DeliveryPoint, open_store
from tests.helpers import tiny_registry

AT = 1_764_000_000
PASSWORD = "mail-PASSWORD-9f3"


class Inbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], email.message.EmailMessage]] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, N802 - aiosmtpd's handler hook
        self.mails.append((envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):  # noqa: ANN001
        user, password = auth_data.login.decode(), auth_data.password.decode()
        self.logins.append((user, password))
        return AuthResult(success=password == PASSWORD, handled=False)  # False: aiosmtpd answers 535


@pytest.fixture
def smtp_server(tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make the test's certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=inbox.authenticate, auth_required=True,
                            auth_require_tls=True)
    controller.start()
    yield inbox, controller.port, cert
    controller.stop()


async def _deliver(tmp_path, duck_url, smtp: SmtpSettings) -> tuple[Sender, list[DeliveryPoint]]:
    tiny_registry(tmp_path / "registry")
    (tmp_path / "registry" / "contacts.csv").write_text(
        "id,name,channel,address,scope,rules,min_severity,quiet_hours\n"
        "yc-mail,银川能源科,email,energy@yinchuan.gov.cn,city:yinchuan,*,info,\n", encoding="utf-8")
    registry, problems = load_registry(tmp_path / "registry")
    assert problems == []
    cfg = AnalyticsSettings(state_file=tmp_path / "alerts.json", lookback_days=1.0, smtp=smtp)
    store = open_store(duck_url)
    await store.open()
    try:
        book = load_book(cfg.state_file, update_interval_s=0)
        await evaluate(store, registry, cfg, book, AT, [], rules=["silent"])
        sender = Sender(book, registry, cfg, [], store)
        await sender.drain(30, retry=False)
        return sender, await store.fetch(DeliveryPoint)
    finally:
        await store.close()


async def test_digest_mailed_over_starttls_after_login(smtp_server, tmp_path, duck_url):
    inbox, port, cert = smtp_server
    smtp = SmtpSettings(host="127.0.0.1", port=port, ca_file=cert, user="meterwatch", password=PASSWORD,
                        sender="alerts@meterwatch.nx.gov.cn")
    sender, deliveries = await _deliver(tmp_path, duck_url, smtp)
    assert inbox.logins == [("meterwatch", PASSWORD)]
    ((rcpt, mail),) = inbox.mails
    assert rcpt == ["energy@yinchuan.gov.cn"] and mail["From"] == "alerts@meterwatch.nx.gov.cn"
    assert mail["Subject"] == "[能耗告警 meterwatch] 新告警 2 条"  # inst-a's two meters; inst-b is in Wuzhong
    body = mail.get_content()
    assert "银川市第1中学" in body and "表计 a-w1" in body and "表计 a-e1" in body and "b-w1" not in body
    assert [(d.contact, d.channel, d.outcome) for d in deliveries] == [("yc-mail", "email", "sent")]
    assert dict(sender.counts) == {"sent": 1}


async def test_a_refused_login_is_abandoned_with_the_reason_and_no_password(smtp_server, tmp_path, duck_url, caplog):
    inbox, port, cert = smtp_server
    smtp = SmtpSettings(host="127.0.0.1", port=port, ca_file=cert, user="meterwatch", password="wrong-" + PASSWORD)
    sender, deliveries = await _deliver(tmp_path, duck_url, smtp)
    assert inbox.mails == [] and set(inbox.logins) == {("meterwatch", "wrong-" + PASSWORD)}  # (PLAIN, LOGIN)
    ((contact, outcome, detail),) = [(d.contact, d.outcome, d.detail) for d in deliveries]
    assert (contact, outcome) == ("yc-mail", "abandoned") and detail.startswith("SMTP 535")
    assert dict(sender.counts) == {"abandoned": 1}
    assert not any(PASSWORD in r.getMessage() + str(vars(r)) for r in caplog.records)


async def test_an_untrusted_certificate_is_a_failure_retried_later(smtp_server, tmp_path, duck_url):
    inbox, port, _ = smtp_server
    smtp = SmtpSettings(host="127.0.0.1", port=port, user="meterwatch", password=PASSWORD)  # the system's CAs
    sender, deliveries = await _deliver(tmp_path, duck_url, smtp)
    assert inbox.logins == [] and inbox.mails == []
    ((outcome, detail),) = [(d.outcome, d.detail) for d in deliveries]
    assert outcome == "failed" and "CERTIFICATE_VERIFY_FAILED" in detail


def test_email_contacts_without_a_mail_server_exit_2_at_start(tmp_path, monkeypatch, capsys):
    from meterwatch_cli.main import main

    tiny_registry(tmp_path / "registry")
    (tmp_path / "registry" / "contacts.csv").write_text(
        "id,name,channel,address,scope,rules,min_severity,quiet_hours\n"
        "yc-mail,银川能源科,email,energy@yinchuan.gov.cn,city:yinchuan,*,info,\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METERWATCH_REGISTRY", str(tmp_path / "registry"))
    assert main(["analyze", "--once"]) == 2
    assert "analytics.smtp.host is not set, and contacts.csv has email contacts (yc-mail)" in capsys.readouterr().err
