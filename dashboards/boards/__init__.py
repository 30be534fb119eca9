"""The five dashboards, each in its own module; ``all_boards`` builds them for one deployment."""

from __future__ import annotations

from dashboards.boards import alerts, collector, garbage, institution, province
from dashboards.grafana import Dashboard
from meterwatch.settings import Settings


def all_boards(settings: Settings) -> list[Dashboard]:
    return [
        province.board(settings.cities),
        institution.board(settings.cities),
        alerts.board(),
        garbage.board(settings.cities, settings.analytics.sorting_target_share),
        collector.board(),
    ]
