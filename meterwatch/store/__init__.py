"""Time-series store: one interface (``Store``), chosen by URL.

``influxdb://host:8086/db`` (production) or ``duckdb://<path>`` (embedded): the path is what follows
``duckdb://``, so ``duckdb://meterwatch.duckdb`` (the default) and ``duckdb://./rel.duckdb`` are relative
to the working directory, ``duckdb:///abs/file.duckdb`` is absolute, and ``duckdb://:memory:`` (or
``duckdb://``) is in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterwatch.redact import redact_url
from meterwatch.store.base import DeviceActivity, Store
from meterwatch.store.errors import PermanentStoreError, StoreError, TransientStoreError
from meterwatch.store.records import (
    AlertPoint,
    Batch,
    BillPoint,
    ChangeMark,
    CollectorSample,
    DeliveryPoint,
    MeterValuePoint,
    ReadingPoint,
    RejectRecord,
    StatisticPoint,
    CostPoint,
    PricedDay,
    ReadingColumns,
    WeighingPoint,
)

if TYPE_CHECKING:
    from meterwatch.settings import Settings


def open_store(url: str, *, user: str | None = None, password: str | None = None,
               timeout_s: float = 30.0, max_body_bytes: int | None = None) -> Store:
    """A store for ``url`` (not yet opened: ``await store.open()``).

    ``max_body_bytes`` bounds one InfluxDB write request (default: safely under influxd's own limit).
    """
    if url.startswith(("influxdb://", "influxdbs://")):
        from meterwatch.store.influx import MAX_BODY_BYTES, InfluxStore

        return InfluxStore(url, user=user, password=password, timeout_s=timeout_s,
                           max_body_bytes=max_body_bytes or MAX_BODY_BYTES)
    if url.startswith("duckdb://"):
        from meterwatch.store.duck import DuckStore

        return DuckStore(url)
    raise ValueError(f"unknown store URL {redact_url(url)!r}: expected influxdb://host:port/db or duckdb://path")


def store_for(settings: Settings, *, timeout_s: float = 30.0, max_body_bytes: int | None = None) -> Store:
    """The configured store, with the configured credentials (the password stays a secret until here)."""
    password = settings.store_password.get_secret_value() if settings.store_password else None
    return open_store(settings.store, user=settings.store_user, password=password, timeout_s=timeout_s,
                      max_body_bytes=max_body_bytes)


__all__ = [
    "AlertPoint", "Batch", "BillPoint", "ChangeMark", "CollectorSample", "DeliveryPoint", "DeviceActivity", "MeterValuePoint",
    "PermanentStoreError", "ReadingColumns", "ReadingPoint",
    "RejectRecord", "StatisticPoint", "CostPoint", "PricedDay", "Store", "StoreError", "TransientStoreError", "WeighingPoint", "open_store", "store_for",
]
