"""The rules: one module each, found here by discovery (no central list; see ``base`` for how to add one).

``discover()`` imports every module of this package that declares ``RULE``
and returns the rules by name, in the order of their module names.
``configure()`` validates the ``[analytics.<rule>]`` sections of the
settings against each rule's own settings model.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError

from analytics.rules.base import Rule
from meterwatch.settings import AnalyticsSettings

NOT_RULES = frozenset({"base"})


class RuleSettingsError(ValueError):
    """A rule section of the settings is unknown or holds a bad value; the message names the key."""


@cache
def discover(package: str = __name__) -> dict[str, Rule]:
    """Every ``RULE`` declared by a module of ``package``, by rule name."""
    pkg = importlib.import_module(package)
    rules: dict[str, Rule] = {}
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name in NOT_RULES or info.name.startswith("_"):
            continue
        rule = getattr(importlib.import_module(f"{package}.{info.name}"), "RULE", None)
        if not isinstance(rule, Rule):
            continue
        if rule.name in rules:
            raise RuntimeError(f"rule {rule.name!r} declared twice ({package}.{info.name})")
        rules[rule.name] = rule
    return rules


def labels(rules: dict[str, Rule] | None = None) -> dict[str, str]:
    """Rule id -> ``漏水 Leak``, for dashboards (handed down to them by the command line)."""
    return {name: rule.label for name, rule in (rules or discover()).items()}


def configure(cfg: AnalyticsSettings, rules: dict[str, Rule] | None = None) -> dict[str, BaseModel]:
    """Each rule's settings: its defaults, overridden by ``[analytics.<name>]``; raises RuleSettingsError."""
    rules = rules if rules is not None else discover()
    extra: dict[str, Any] = dict(cfg.model_extra or {})
    for key, section in extra.items():
        if key not in rules:
            raise RuleSettingsError(f"analytics.{key}: unknown setting; rule sections are "
                                    f"{', '.join(f'analytics.{n}' for n in rules)}")
        if not isinstance(section, dict):
            raise RuleSettingsError(f"analytics.{key}: a rule's settings are a table ([analytics.{key}])")
    return {name: _validate(name, rule.settings, extra.get(name, {})) for name, rule in rules.items()}


def _validate(name: str, model: type[BaseModel], section: dict[str, Any]) -> BaseModel:
    unknown = sorted(set(section) - set(model.model_fields))
    if unknown:
        raise RuleSettingsError(f"analytics.{name}.{unknown[0]}: unknown setting; the {name} rule's settings are "
                                f"{', '.join(model.model_fields)}")
    try:
        return model.model_validate({k: _from_env(v) for k, v in section.items()})
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"])
        raise RuleSettingsError(f"analytics.{name}.{where}: {error['msg']} (got {error.get('input')!r})") from None


def _from_env(value: Any) -> Any:
    """A table or list given as JSON in an environment variable (``METERWATCH_ANALYTICS__LEAK__TYPE_FACTOR``)."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
