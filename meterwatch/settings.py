"""The one settings model: defaults < ``meterwatch.toml`` < ``METERWATCH_*``.

Nested sections are reachable from the environment with ``__``, e.g.
``METERWATCH_COLLECTOR__BATCH_SIZE=1000``.  Passwords are ``SecretStr`` so
that printing or logging the settings never shows them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from meterwatch.const import DEFAULT_CITIES
from meterwatch.redact import redact_url  # noqa: F401 - re-exported: its home is meterwatch.redact

DEFAULT_CONFIG_FILE = Path("meterwatch.toml")


class CollectorSettings(BaseModel):
    client_id: str = Field("meterwatch-collector", description="fixed MQTT client id: the persistent session's key")
    instance: str = Field("collector-1", description="tag of this process in the `collector` measurement")
    partition: str | None = Field(None, description="i/N: this process handles only the devices whose id hashes "
                                  "to i of N, on its own session (`collect --workers N` sets it for each worker)")
    workers: int | None = Field(None, ge=1, description="`meterwatch collect` runs this many partition workers under "
                                "a supervisor (default: the machine's cores with InfluxDB, 1 with DuckDB)")
    batch_size: int = Field(500, ge=1, le=50_000, description="flush when this many messages wait")
    batch_max_bytes: int = Field(512 * 1024, ge=1024, description="or when their payloads hold this many bytes. "
                                 "A flush works through the messages in batches within both bounds: it holds the "
                                 "event loop a few ms at a time, so writes in flight are answered and the next "
                                 "ones sent between batches (512 KiB: about 13,000 readings of daily uploads)")
    batch_interval_s: float = Field(1.0, gt=0, description="flush at least this often")
    max_payload_bytes: int = Field(256 * 1024, ge=64)
    max_batch_readings: int = Field(2_000, ge=1)
    future_tolerance_s: int = Field(3600, ge=0, description="readings later than now + this are rejected")
    metrics_interval_s: float = Field(10.0, gt=0)
    history_window: int = Field(128, ge=2, description="recent readings kept per device: a day's batch of "
                                                       "96 must fit so that its retry is a duplicate")
    write_retry_max_s: float = Field(15.0, gt=0, description="longest wait between attempts to write the spool "
                                     "back while the store is down (2 s at first, doubling)")
    shutdown_grace_s: float = Field(30.0, ge=0, description="on stop, wait this long for a full spool to drain")
    spool_dir: Path = Field(Path("spool"), description="batches wait here while the store is down")
    spool_max_bytes: int = Field(1 << 30, ge=1, description="beyond this: backpressure, never drop")
    store_timeout_s: float = Field(10.0, gt=0, description="a write slower than this counts as an outage")
    write_max_bytes: int = Field(10_000_000, ge=1024, description="largest InfluxDB write request: influxd "
                                 "refuses bodies over its max-body-size (25,000,000 bytes by default) with 413")
    reject_payload_max_bytes: int = Field(64 * 1024, ge=64, description="a reject keeps at most this much of its "
                                          "payload; the detail says the original length")
    silence_warn_s: float = Field(900.0, gt=0, description="connected but nothing received this long: say so")
    frame_repeat_s: float = Field(300.0, ge=0, description="a binary frame (stamped on receipt) whose register "
                                  "equals the device's latest reading, received less than this before, is a "
                                  "redelivery: a duplicate, not a second reading (0: never)")
    http_listen: str | None = Field(None, description="serve /healthz, Prometheus /metrics and the platforms' HTTP "
                                                      "push routes here (host:port)")
    onenet_token: SecretStr | None = Field(None, description="OneNET HTTP push token (METERWATCH_COLLECTOR__ONENET_TOKEN):"
                                           " signs the pushes; none: /push/onenet is off; never logged")
    ctwing_token: SecretStr | None = Field(None, description="CTWing (AEP) push secret (METERWATCH_COLLECTOR__CTWING_TOKEN)"
                                           ": the subscription URL carries it as ?token=; none: /push/ctwing is off")
    push_max_bytes: int = Field(64 * 1024, ge=1024, description="a push request body above this is refused (413)")
    push_flush_s: float = Field(0.05, gt=0, description="a push waiting for its answer is flushed within this "
                                "(pushes arriving meanwhile share the write), not after batch_interval_s")
    push_timeout_s: float = Field(30.0, gt=0, description="a push is answered 503 (the platform retries) when its "
                                  "readings are not durable (store or spool) within this")

    @model_validator(mode="before")
    @classmethod
    def _no_shared_group(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("shared_group"):
            raise ValueError("collector.shared_group is no longer supported: collectors sharing a subscription can "
                             "compute a wrong consumption when one meter's uploads reach two of them at once; run "
                             "`meterwatch collect --workers N`, or one `--partition i/N` per host")
        return data

    @field_validator("partition")
    @classmethod
    def _partition(cls, value: str | None) -> str | None:
        if value is None:
            return None
        index, sep, count = value.partition("/")
        if not (sep and index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
            raise ValueError(f"partition {value!r} must be i/N with 0 <= i < N, e.g. 0/2")
        return f"{int(index)}/{int(count)}"


class NotifierSettings(BaseModel):
    kind: str = Field(description="a channel of analytics.notifiers (webhook, dingtalk, wecom, sms_webhook), checked at start")
    url: SecretStr = Field(description="robot URLs carry access tokens: kept secret, never logged")
    per_minute: float | None = Field(None, gt=0, description="rate limit (default: the channel's own)")


class SmtpSettings(BaseModel):
    """A mail server (STARTTLS, then login): ``analytics.smtp`` sends the digests of ``email`` contacts,
    ``reports.smtp`` the scheduled reports (``meterwatch.mail``)."""

    host: str | None = Field(None, description="SMTP server; none: mail is refused at start")
    port: int = Field(587, ge=1, le=65535, description="submission port (STARTTLS)")
    starttls: bool = Field(True, description="upgrade to TLS before login; off only for a relay on localhost")
    ca_file: Path | None = Field(None, description="CA bundle to trust (an internal CA); default: the system's")
    user: str | None = Field(None, description="login; none: no login")
    password: SecretStr | None = Field(None, description="METERWATCH_ANALYTICS__SMTP__PASSWORD or "
                                                         "METERWATCH_REPORTS__SMTP__PASSWORD; never logged")
    sender: str = Field("meterwatch@localhost", description="the From address")
    timeout_s: float = Field(30.0, gt=0, description="one SMTP conversation")


class EscalationSettings(BaseModel):
    """Unacknowledged alerts climb from the institution's contacts to the city's (and type's), then the
    province's, with a reminder at each step; an acknowledgement or the alert's resolution stops it."""

    enabled: bool = Field(False, description="off: every matching contact hears of an alert at once")
    after_s: dict[str, float] = Field(default_factory=lambda: {"critical": 1800.0, "warning": 14400.0, "info": 0.0},
                                      description="per severity: unacknowledged this long, the next level hears "
                                                  "(and the levels before get a reminder); 0: never")


class AnalyticsSettings(BaseModel):
    """The generic keys of analytics.  Each rule's thresholds are a section of their own
    (``[analytics.leak] nights = 3``, ``METERWATCH_ANALYTICS__LEAK__NIGHTS=3``), kept here as extra data and
    validated by analytics against the rule's settings model when it starts (``analytics.rules.configure``)."""

    model_config = ConfigDict(extra="allow")

    state_file: Path = Path("meterwatch-alerts.json")
    mute_file: Path = Field(Path("meterwatch-mutes.json"), description="mutes of `meterwatch alerts mute`: muted "
                                                                       "alerts are stored, not sent")
    interval_s: float = Field(300.0, gt=0, description="scheduled mode: seconds between evaluations")
    statistics_interval_s: float = Field(3600.0, ge=0, description="scheduled mode: write the officers' statistics "
                                                                   "at most this often (0: every evaluation)")
    max_failed_evaluations: int = Field(3, ge=1, description="scheduled mode: exit non-zero (for a supervisor to "
                                                             "restart) after this many failed evaluations in a row")
    update_interval_s: float = Field(3600.0, ge=0, description="an open alert is re-published at most this often")
    lookback_days: float = Field(14.0, gt=0, description="silent rule's window; burst rule's normal flow")
    default_interval_s: float = Field(900.0, gt=0, description="a meter's reading interval where the store does not "
                                                               "say (silent rule, flows)")
    notifiers: list[NotifierSettings] = Field(default_factory=list, description="besides MQTT")
    query_timeout_s: float = Field(120.0, gt=0, description="one store query of analyze (the 10x province's "
                                                             "grouped queries take tens of seconds on InfluxDB)")
    reprice_every_s: float = Field(3600.0, ge=0, description="the last 3 days (late readings) are priced again at "
                                                             "most this often; new days at once (0: every evaluation)")
    rules_at_once: int = Field(2, ge=1, description="rules gathering their inputs at the same time (the store "
                                                    "answers two queries on two cores; alerts apply in order)")
    pricing_days_per_evaluation: int = Field(31, ge=4, description="at most this many days priced per evaluation "
                                                                   "(history after a tariff change: a part at a time)")
    contact_secrets: dict[str, SecretStr] = Field(
        default_factory=dict, description="signing secrets of contacts' robots by contact id (DingTalk 加签 SEC...), "
        "e.g. METERWATCH_ANALYTICS__CONTACT_SECRETS='{\"yc-ops\": \"SEC...\"}'; never in contacts.csv")
    delivery_wait_s: float = Field(30.0, ge=0, description="--once and --ack: wait at most this long for the "
                                                           "messages to be delivered (the rest wait in the outbox)")
    delivery_retry_s: float = Field(30.0, gt=0, description="a failed message is retried after this, doubling")
    delivery_retry_max_s: float = Field(1800.0, gt=0, description="longest wait between two tries of a message")
    delivery_max_attempts: int = Field(20, ge=1, description="a message failing this often is abandoned "
                                                             "(recorded in `delivery` with its reason)")
    delivery_timeout_s: float = Field(10.0, gt=0, description="one HTTP request to a contact's endpoint")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="mail server of email contacts")
    escalation: EscalationSettings = Field(default_factory=EscalationSettings, description="contacts by level")
    http_listen: str | None = Field(None, description="scheduled mode: serve /healthz, /metrics and the "
                                                      "acknowledgement links here (host:port, e.g. 127.0.0.1:9108)")
    public_url: str | None = Field(None, description="the base URL operators reach http_listen at (e.g. behind "
                                                     "a proxy); the acknowledgement links in digests start with it")
    ack_secret: SecretStr | None = Field(None, description="signs the acknowledgement links "
                                                           "(METERWATCH_ANALYTICS__ACK_SECRET); none: no links")
    ack_link_ttl_s: float = Field(604_800.0, gt=0, description="an acknowledgement link expires after this")
    profile_min_days: int = Field(300, ge=1, description="days of last year's data needed for a seasonal profile "
                                                         "(overuse rule, statistics, budget)")


class SimulatorSettings(BaseModel):
    seed: int = 42
    institutions: int = Field(5010, ge=1)
    speed: float = Field(3600.0, gt=0, description="simulated seconds per wall-clock second")
    max_rate: float = Field(2000.0, gt=0, description="messages per second ceiling")
    labels_file: Path = Path("labels.csv")


class GrafanaSettings(BaseModel):
    """Where dashboards go, and how Grafana reaches the store (which may differ from how we do)."""

    url: str = Field("http://127.0.0.1:3000", description="Grafana's base URL, for dashboards push")
    token: SecretStr | None = Field(None, description="service-account token (METERWATCH_GRAFANA__TOKEN)")
    folder_uid: str = "meterwatch"
    folder_title: str = "能耗监测 meterwatch"
    datasource_uid: str = "meterwatch-influxdb"
    datasource_name: str = "meterwatch InfluxDB"
    influx_url: str | None = Field(None, description="InfluxDB as Grafana reaches it; default: the store's host")
    reader_user: str = Field("grafana", description="the read-only InfluxDB user Grafana queries as (GRANT READ); "
                                                    "empty: no credentials, for an InfluxDB without auth")
    reader_password: SecretStr | None = Field(
        None, description="its password (METERWATCH_GRAFANA__READER_PASSWORD); never written by dashboards build")
    provisioning_path: str = Field("/etc/grafana/provisioning",
                                   description="where Grafana mounts the directory dashboards build writes")


class ReportJob(BaseModel):
    scope: str = Field("province", description="province, city:ID or institution:ID")
    period: str = Field("month", description="month, quarter or year: the last one ended is reported")
    day: int = Field(1, ge=1, le=28, description="day of the month (local) from which the last period is due")
    formats: list[str] = Field(default_factory=lambda: ["xlsx", "pdf"])
    to: list[str] = Field(default_factory=list, description="e-mail recipients (needs reports.smtp)")


class ReportSettings(BaseModel):
    yoy_threshold: float = Field(0.3, gt=0, description="quality control lists a change on last year beyond this")
    out_dir: Path = Field(Path("reports"), description="scheduled reports are written here")
    jobs: list[ReportJob] = Field(default_factory=list, description="scheduled reports ([[reports.jobs]])")
    smtp: SmtpSettings | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="METERWATCH_",
        env_nested_delimiter="__",
        extra="forbid",
        toml_file=None,
    )

    broker: str = "mqtt://127.0.0.1:1883"
    broker_user: str | None = None
    broker_password: SecretStr | None = None
    broker_ca_file: Path | None = None
    store: str = Field("duckdb://meterwatch.duckdb", description="influxdb://host:8086/db, or duckdb://<path>: "
                       "relative to the working directory, absolute with a third slash")
    store_user: str | None = None
    store_password: SecretStr | None = None
    registry: Path = Path("registry")
    cities: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_CITIES))
    log_level: str = "INFO"
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Read settings from ``config`` (or ./meterwatch.toml if present) and the environment.

    The TOML path is bound per call through a throwaway subclass because
    pydantic-settings reads ``toml_file`` from the class configuration.
    """
    if config is not None and not config.is_file():
        raise FileNotFoundError(f"config file not found: {config}")
    path = config if config is not None else (DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None)

    class _FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    return _FileSettings(**overrides)
