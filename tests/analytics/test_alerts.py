from analytics.alerts import AlertBook, load_book, save_book
from analytics.rules.base import Finding


def finding(device="d1", value=7.0, since=1000):
    return Finding("silent", "i1", device, since, value, "h", "warning", f"{value} 小时", f"{value} h")


def states(events):
    return [(e.device, e.state) for e in events]


def test_open_once_update_at_most_at_interval_resolve_with_hysteresis():
    book = AlertBook(update_interval_s=3600, resolve_after=2)
    scope = {"d1", "d2"}
    assert states(book.apply("silent", [finding(value=7)], scope, 10_000)) == [("d1", "open")]
    assert book.apply("silent", [finding(value=7)], scope, 10_300) == []  # unchanged: nothing
    assert book.apply("silent", [finding(value=8)], scope, 10_600) == []  # changed but too soon
    assert states(book.apply("silent", [finding(value=9)], scope, 13_700)) == [("d1", "update")]
    assert book.apply("silent", [], scope, 14_000) == []  # first miss: hysteresis holds it open
    assert states(book.apply("silent", [finding(value=9)], scope, 14_300)) == []  # back: same alert, no reopen
    assert book.apply("silent", [], scope, 14_600) == []
    events = book.apply("silent", [], scope, 14_900)
    assert states(events) == [("d1", "resolved")] and events[0].since == 1000
    assert book.alerts == {}


def test_one_condition_one_alert_id_and_devices_outside_scope_stay_open():
    book = AlertBook(resolve_after=1)
    opened = book.apply("silent", [finding("d1"), finding("d2")], {"d1", "d2"}, 100)
    assert len({e.id for e in opened}) == 2
    assert book.apply("silent", [], {"d2"}, 200)[0].device == "d2"  # d1 was not evaluated: still open
    assert list(book.alerts) == ["silent|d1"]


def test_acknowledged_alert_is_announced_once_and_mutes_updates():
    book = AlertBook(update_interval_s=0)
    (opened,) = book.apply("silent", [finding()], {"d1"}, 100)
    assert book.acknowledge(opened.id, 150).state == "acknowledged"
    assert book.acknowledge(opened.id, 160) is None
    assert book.apply("silent", [finding(value=99)], {"d1"}, 200) == []


def test_state_survives_a_restart(tmp_path):
    path = tmp_path / "alerts.json"
    book = AlertBook(resolve_after=1)
    book.apply("silent", [finding()], {"d1"}, 100)
    save_book(book, path)
    again = load_book(path, update_interval_s=3600, resolve_after=1)
    assert again.apply("silent", [finding()], {"d1"}, 200) == []  # not re-opened
    assert states(again.apply("silent", [], {"d1"}, 300)) == [("d1", "resolved")]


def test_events_of_one_alert_never_share_a_second():
    book = AlertBook(resolve_after=1)
    opened = book.apply("silent", [finding()], {"d1"}, 500)
    resolved = book.apply("silent", [], {"d1"}, 500)
    reopened = book.apply("silent", [finding(since=400)], {"d1"}, 500)
    assert [e.ts for e in opened + resolved + reopened] == [500, 501, 502]
