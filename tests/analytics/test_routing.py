"""Routing rules on their own: scopes, rules, severities, quiet hours (pure functions, hand-made events)."""

from __future__ import annotations

from analytics.alerts import AlertBook
from analytics.digest import compose, cost_per_day, render
from analytics.routing import held_until, quiet_until, recipients, unknown_rules
from analytics.rules import discover
from meterwatch.localtime import midnight_of
from meterwatch.registry import Contact, Institution, Registry
from meterwatch.store import AlertPoint
from datetime import date

INSTITUTIONS = {"a": Institution("a", "银川市第1中学", "yinchuan", "education", "secondary", 9000.0, 800),
                "b": Institution("b", "吴忠市1号政务楼", "wuzhong", "office", "bureau", 4000.0, 150)}


def contact(cid: str, scope: str, scope_id: str = "", rules: tuple[str, ...] = (), severity: str = "info",
            quiet: tuple[int, int] | None = None, address: str = "") -> Contact:
    return Contact(cid, cid, "webhook", address or f"http://x/{cid}", scope, scope_id, rules, severity, quiet)


def event(inst: str, rule: str = "leak", severity: str = "warning", message: str = "漏水") -> AlertPoint:
    return AlertPoint(f"id-{inst}-{rule}", 1_764_000_000, "open", inst, f"{inst}-w1", rule, severity, message,
                      "leak", 0.2, "m3/h", 1_763_900_000)


def registry(*contacts: Contact) -> Registry:
    return Registry(INSTITUTIONS, {}, {}, contacts={c.id: c for c in contacts})


def test_overlapping_scopes_each_contact_once_and_one_address_once():
    reg = registry(contact("prov", "province"), contact("yc", "city", "yinchuan"), contact("edu", "type", "education"),
                   contact("a-only", "institution", "a"), contact("b-only", "institution", "b"),
                   contact("prov-leak", "province", rules=("leak",), address="http://x/prov"),  # = prov's address
                   contact("burst", "province", rules=("burst",)), contact("crit", "province", severity="critical"))
    assert [c.id for c in recipients(event("a"), reg)] == ["a-only", "edu", "prov", "yc"]
    assert [c.id for c in recipients(event("b"), reg)] == ["b-only", "prov"]
    assert [c.id for c in recipients(event("a", "burst", "critical"), reg)] == [
        "a-only", "burst", "crit", "edu", "prov", "yc"]
    assert [c.id for c in recipients(event("gone"), reg)] == ["prov"]  # an institution no longer registered


def test_one_message_per_contact_lists_all_its_alerts():
    reg = registry(contact("prov", "province"), contact("yc", "city", "yinchuan"))
    book = AlertBook()
    book.undigested = [event("a"), event("a", "silent"), event("b")]
    messages = compose(book, reg, 1_764_000_000)
    assert [(m.contact, [e.id for e in m.events]) for m in messages] == [
        ("prov", ["id-a-leak", "id-a-silent", "id-b-leak"]), ("yc", ["id-a-leak", "id-a-silent"])]
    assert book.undigested == [] and book.messages == messages


def test_quiet_hours_hold_until_they_end_except_critical():
    night = contact("n", "province", quiet=(22 * 60, 7 * 60))
    day = contact("d", "province", quiet=(12 * 60, 14 * 60))
    midnight = midnight_of(date(2025, 11, 25))  # local
    at_23 = midnight + 23 * 3600 + 5 * 60
    assert quiet_until(night, at_23) == midnight + 86400 + 7 * 3600  # 07:00 the next morning
    assert quiet_until(night, midnight + 3 * 3600) == midnight + 7 * 3600
    assert quiet_until(night, midnight + 8 * 3600) == midnight + 8 * 3600  # not quiet: at once
    assert quiet_until(day, midnight + 13 * 3600 + 30) == midnight + 14 * 3600
    assert held_until(night, [event("a")], at_23) == midnight + 86400 + 7 * 3600
    assert held_until(night, [event("a"), event("b", severity="critical")], at_23) == at_23


def test_unknown_rule_names_are_said_at_start():
    reg = registry(contact("x", "province", rules=("leak", "lake")))
    (problem,) = unknown_rules(reg.contacts.values(), discover())
    assert problem.startswith("contacts.csv: contact x: unknown rule 'lake'")


def test_digest_names_rule_label_institution_and_cost_per_day():
    reg = registry(contact("prov", "province"))
    book = AlertBook()
    book.undigested = [event("a", message="银川市第1中学 水表连续 3 夜最小夜间流量 0.210 m³/h，按现行水价每天约损失 ¥1,234"),
                       event("b", "silent")]
    (message,) = compose(book, reg, 1_764_000_000)
    heading, text = render(message, reg)
    assert heading == "[能耗告警 meterwatch] 新告警 2 条"
    leak_line = next(line for line in text.splitlines() if "a-w1" in line)
    assert leak_line.startswith("- **新告警** 漏水 Leak｜银川市第1中学｜表计 a-w1｜0.2 m3/h｜自 2025-11-23 20:13")
    assert "每天约损失 ¥1,234" in leak_line and cost_per_day(event("b")) == ""
    assert "吴忠市1号政务楼" in text


def test_analyze_exits_2_naming_a_contact_with_an_unknown_rule(tmp_path, monkeypatch, capsys):
    from meterwatch_cli.main import main
    from tests.helpers import tiny_registry

    tiny_registry(tmp_path / "registry")
    (tmp_path / "registry" / "contacts.csv").write_text(
        "id,name,channel,address,scope,rules,min_severity,quiet_hours\n"
        "ops,运维,webhook,http://127.0.0.1:9/x,province,leak|lake,info,\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("METERWATCH_REGISTRY", str(tmp_path / "registry"))
    assert main(["analyze", "--once", "--no-publish"]) == 2
    assert "contacts.csv: contact ops: unknown rule 'lake'" in capsys.readouterr().err
