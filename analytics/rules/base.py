"""The rule role: what a rule module declares, and what it may rely on.

How to add a rule (one module plus its test, nothing else to edit):

1. Write ``analytics/rules/<name>.py`` with

   - the pure part: numpy arrays in, numpy arrays out, no I/O (tested on
     hand-made arrays in ``tests/analytics/test_rules.py`` or a test of its own);
   - its settings: a pydantic ``BaseModel`` whose every field has a default
     and a description. Operators set them under ``[analytics.<name>]`` in
     ``meterwatch.toml`` or as ``METERWATCH_ANALYTICS__<NAME>__<KEY>``;
   - its evaluator: ``async def evaluate(ctx: Context[MySettings]) -> RuleResult``.
     It gathers its inputs from ``ctx.store`` (``analytics.inputs`` has the
     shared queries), runs the pure part, and phrases each ``Finding`` for
     operators in Chinese and English;
   - ``RULE = Rule(name, label_cn, label_en, MySettings, evaluate, severity=...)``.

2. That is all: ``analytics.rules.discover()`` finds every module of this
   package that has a ``RULE``. Evaluations run it; ``meterwatch analyze``
   checks its settings section at start (a bad value exits 2 naming the key);
   the robots' titles, the dashboards' labels and the accuracy benchmark read
   the descriptor. The simulator names the rule a fault should raise in the
   ``expect`` of its labels (``simulators/faults.py``).

Contract an evaluator may rely on: ``ctx.settings`` is its own section,
validated; ``ctx.analytics`` holds the generic keys (``lookback_days``,
``profile_min_days``...); it may raise anything: the runner logs the rule as
failed and the other rules still run.  It must return every device (or
institution key) it looked at in ``scope``, so that the alert lifecycle can
resolve what is no longer found.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel

from meterwatch.const import SEVERITIES
from meterwatch.registry import Registry
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import Store

KIND_CN = {"water": "水", "electricity": "电", "heat": "热"}  # how a meter's kind reads in a Chinese sentence

S = TypeVar("S", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule's verdict on one device, before the lifecycle decides what to publish."""

    rule: str
    institution: str
    device: str
    since: int
    value: float
    unit: str
    severity: str
    message: str
    message_en: str


@dataclass
class RuleResult:
    findings: list[Finding]
    scope: set[str]  # every device (or institution key) the rule looked at
    notes: list[str] = field(default_factory=list)  # what could not be judged, and why
    skipped: bool = False  # nothing to judge at all (e.g. no tariffs): neither a success nor a failure


@dataclass(frozen=True)
class Context(Generic[S]):
    """What an evaluator is given: where to read, as of when, and its settings."""

    rule: Rule
    store: Store
    registry: Registry
    analytics: AnalyticsSettings
    settings: S
    at: int

    def finding(self, institution: str, device: str, since: int, value: float, unit: str, message: str,
                message_en: str, severity: str | None = None) -> Finding:
        """A finding of this rule, at the rule's default severity unless told otherwise."""
        return Finding(self.rule.name, institution, device, int(since), value, unit, severity or self.rule.severity,
                       message, message_en)


@dataclass(frozen=True)
class Rule(Generic[S]):
    """One rule, declared once in its module as ``RULE``."""

    name: str  # the `rule` tag of alerts: a contract name, never renamed
    label_cn: str  # 漏水: dashboards and robots
    label_en: str  # Leak
    settings: type[S]  # its thresholds, every field with a default and a description
    evaluate: Callable[[Context[S]], Awaitable[RuleResult]]
    severity: str = "warning"  # of its findings unless the evaluator says otherwise

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"rule {self.name}: severity {self.severity!r} is not one of {SEVERITIES}")

    @property
    def label(self) -> str:
        """``漏水 Leak``: how officers read the rule's id."""
        return f"{self.label_cn} {self.label_en}"
