"""What the dashboards show of analytics, read from the rules' descriptors and settings.

Dashboards may not import analytics (layers); the command line and the
scenarios, above both, hand them this.
"""

from __future__ import annotations

from analytics.rules import configure, labels
from dashboards.common import AnalyticsFacts
from meterwatch.settings import Settings


def analytics_facts(settings: Settings) -> AnalyticsFacts:
    """The rules' labels and the sorting target; raises RuleSettingsError (a ValueError) on a bad section."""
    return AnalyticsFacts(labels(), configure(settings.analytics)["sorting"].target_share)
