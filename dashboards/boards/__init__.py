"""The five dashboards, each in its own module; ``all_boards`` builds them for one deployment."""

from __future__ import annotations

from dashboards.boards import alerts, collector, garbage, institution, province
from dashboards.common import AnalyticsFacts
from dashboards.grafana import Dashboard
from meterwatch.settings import Settings


def all_boards(settings: Settings, facts: AnalyticsFacts) -> list[Dashboard]:
    return [
        province.board(settings.cities, facts.rule_labels),
        institution.board(settings.cities, facts.rule_labels),
        alerts.board(facts.rule_labels),
        garbage.board(settings.cities, facts.sorting_target_share),
        collector.board(facts.rule_labels),
    ]
