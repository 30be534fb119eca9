"""Adding a rule is one module: discovered, configured, evaluated on a real store, labelled for robots and
dashboards.  And the rule sections of the settings are checked at start (exit 2 naming the key)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import analytics.rules
from analytics.alerts import AlertBook
from analytics.notifiers import channels
from analytics.notifiers.robots import title
from analytics.rules import RuleSettingsError, configure, discover
from analytics.runner import evaluate
from meterwatch.settings import AnalyticsSettings, Settings, load_settings
from meterwatch.store import Batch, ReadingPoint, open_store
from meterwatch_cli.main import main
from scenarios.facts import analytics_facts
from tests.helpers import tiny_registry

AT = 1_764_000_000
CONTRACT_RULES = {"leak", "burst", "overuse", "silent", "meter_fault", "sorting"}  # and any rule added since

# A whole new rule, as an engineer would write it in analytics/rules/: nothing else is edited.
NEW_RULE = '''
"""``heavy_day``: an electricity meter that used more than a limit in the last day."""

import numpy as np
from pydantic import BaseModel, Field

from analytics import inputs
from analytics.rules.base import Context, Rule, RuleResult


class HeavyDaySettings(BaseModel):
    limit_kwh: float = Field(100.0, gt=0, description="kWh in a day above which a meter is heavy")


async def evaluate(ctx: Context[HeavyDaySettings]) -> RuleResult:
    devices = inputs.meters(ctx.registry, frozenset({"electricity"}))
    use, _ = await inputs.use_and_count(ctx.store, devices, ctx.at - 86400, ctx.at)
    findings = [ctx.finding(devices[i].institution, devices[i].id, ctx.at - 86400, float(use[i]), "kWh",
                            f"{devices[i].id} 日用电 {use[i]:.0f} kWh", f"{devices[i].id} used {use[i]:.0f} kWh")
                for i in np.flatnonzero(use > ctx.settings.limit_kwh)]
    return RuleResult(findings, {d.id for d in devices})


RULE = Rule("heavy_day", "用电偏高", "Heavy day", HeavyDaySettings, evaluate, severity="info")
'''


@pytest.fixture
def new_rule(tmp_path, monkeypatch):
    """``heavy_day.py`` placed beside the package's modules (an extra directory of the package's path)."""
    folder = tmp_path / "more_rules"
    folder.mkdir()
    (folder / "heavy_day.py").write_text(textwrap.dedent(NEW_RULE), encoding="utf-8")
    monkeypatch.setattr(analytics.rules, "__path__", [*analytics.rules.__path__, str(folder)])
    discover.cache_clear()
    yield
    discover.cache_clear()


def test_every_rule_declares_labels_severity_and_documented_defaults() -> None:
    rules = discover()
    assert CONTRACT_RULES <= set(rules)
    defaults = configure(AnalyticsSettings())
    for name, rule in rules.items():
        assert rule.label_cn and rule.label_en and rule.severity in ("info", "warning", "critical"), name
        for key, spec in rule.settings.model_fields.items():
            assert not spec.is_required() and spec.description, f"analytics.{name}.{key}"
        assert defaults[name] == rule.settings(), name
    # Today's thresholds, unchanged by the move (were analytics.leak_nights, burst_factor, ...).
    assert (defaults["leak"].nights, defaults["burst"].factor, defaults["silent"].min_s) == (3, 3.0, 21600.0)
    assert (defaults["sorting"].target_share, defaults["overuse"].min_elapsed_share) == (0.10, 0.04)
    assert set(channels()) == {"webhook", "dingtalk", "wecom", "sms_webhook"}
    assert {k: c.per_minute for k, c in channels().items()} == {"webhook": 60, "dingtalk": 20, "wecom": 20,
                                                                "sms_webhook": 30}


async def test_a_new_rule_module_is_all_it_takes(new_rule, duck_url, tmp_path) -> None:
    registry = tiny_registry(tmp_path / "registry")
    store = open_store(duck_url)
    await store.open()
    # a-e1 uses 96 x 2 kWh = 192 kWh in the last day: above the default limit of 100.
    await store.write(Batch(readings=[
        ReadingPoint("a-e1", "inst-a", "yinchuan", "education", "electricity", t, 1000.0 + 2 * k, 2.0, 900)
        for k, t in enumerate(range(AT - 86400, AT, 900))]))  # the day [AT - 1 d, AT)
    try:
        result = await evaluate(store, registry, AnalyticsSettings(), AlertBook(), AT, [])
        assert result.failed == {} and set(result.ran) == set(discover()) >= CONTRACT_RULES | {"heavy_day"}
        (event,) = [e for e in result.events if e.rule == "heavy_day"]
        assert (event.device, event.state, event.severity, event.value) == ("a-e1", "open", "info", 192.0)
        assert title(event) == "[新告警] 用电偏高 Heavy day inst-a"
        assert analytics_facts(Settings()).rule_labels["heavy_day"] == "用电偏高 Heavy day"
        # Its settings section is read: a higher limit, no finding.
        cfg = AnalyticsSettings(heavy_day={"limit_kwh": 200})
        assert configure(cfg)["heavy_day"].limit_kwh == 200
        quiet = await evaluate(store, registry, cfg, AlertBook(), AT, [], rules=["heavy_day"])
        assert quiet.events == [] and quiet.failed == {}
    finally:
        await store.close()
    with pytest.raises(RuleSettingsError, match=r"analytics\.heavy_day\.limit_kwh"):
        configure(AnalyticsSettings(heavy_day={"limit_kwh": -1}))


@pytest.mark.parametrize("env, named", [
    ({"METERWATCH_ANALYTICS__LEAK__NIGHTS": "zero"}, "analytics.leak.nights"),
    ({"METERWATCH_ANALYTICS__LEAK__NIGHT": "3"}, "analytics.leak.night: unknown setting"),
    ({"METERWATCH_ANALYTICS__LEAK_NIGHTS": "3"}, "analytics.leak_nights: unknown setting"),  # the old flat key
    ({"METERWATCH_ANALYTICS__LEAK__TYPE_FACTOR": '{"medical": "high"}'}, "analytics.leak.type_factor.medical"),
    ({"METERWATCH_ANALYTICS__NOTIFIERS": '[{"kind": "telegram", "url": "https://x"}]'},
     "analytics.notifiers[0].kind: unknown channel 'telegram'"),
])
def test_bad_rule_settings_exit_2_naming_the_key(env, named, monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["analyze", "--once", "--no-publish"]) == 2
    assert named in capsys.readouterr().err


def test_rule_sections_from_toml_and_environment(monkeypatch, tmp_path: Path) -> None:
    config = tmp_path / "meterwatch.toml"
    config.write_text('[analytics.leak]\nnights = 4\ntype_factor = {medical = 2.0}\n\n[analytics.burst]\nfactor = 5\n',
                      encoding="utf-8")
    monkeypatch.setenv("METERWATCH_ANALYTICS__SILENT__MIN_S", "7200")
    own = configure(load_settings(config).analytics)
    assert (own["leak"].nights, own["leak"].type_factor, own["burst"].factor) == (4, {"medical": 2.0}, 5.0)
    assert own["silent"].min_s == 7200.0 and own["silent"].factor == 4.0  # the rest keeps its defaults
