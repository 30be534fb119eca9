"""A crash in the middle of an evaluation neither duplicates nor loses alerts (real DuckDB store).

Two crash points are injected: a process "killed" while notifying (after
the store write), and a store that refuses the alert write.  The re-run
(from the saved state file only, as a restarted process would) must keep
the same alert ids, store each event once, deliver what was not
delivered, and later resolve those same alerts.
"""

from __future__ import annotations

from collections import Counter

import pytest

from analytics.alerts import load_book
from analytics.runner import evaluate
from analytics.sender import deliver_notifiers
from meterwatch.settings import AnalyticsSettings
from meterwatch.store import AlertPoint, Batch, ReadingPoint, TransientStoreError, open_store
from tests.helpers import tiny_registry

AT = 1_764_000_000
SILENT = {"a-w1", "b-w1"}  # a-w1 stopped 10 h ago; b-w1 never spoke in the window: its 'since' moves with time


class Killed(BaseException):
    """What SIGKILL would do to the evaluation: nothing after it runs (not an Exception: nothing catches it)."""


class Recorder:
    def __init__(self, kill: bool = False) -> None:
        self.key, self.kill, self.got = "recorder", kill, []

    async def send(self, events: list[AlertPoint]) -> None:
        self.got += events
        if self.kill:
            raise Killed


class RefusingStore:
    """The real store, except that it refuses alert writes while ``refuse`` is set (a store failing mid-run)."""

    def __init__(self, store) -> None:
        self.store, self.refuse = store, False

    def __getattr__(self, name):
        return getattr(self.store, name)

    async def write(self, batch: Batch) -> None:
        if self.refuse and batch.alerts:
            raise TransientStoreError("injected: store refused the alert write")
        await self.store.write(batch)


def readings(device: str, inst: str, kind: str, until: int) -> list[ReadingPoint]:
    return [ReadingPoint(device, inst, "yinchuan", "office", kind, t, float(t - AT + 10**6) / 1000, 0.9, 900)
            for t in range(AT - 2 * 86400, until + 1, 900)]


@pytest.fixture
async def setup(tmp_path, duck_url):
    registry = tiny_registry(tmp_path / "registry")
    store = RefusingStore(open_store(duck_url))
    await store.open()
    await store.write(Batch(readings=readings("a-w1", "inst-a", "water", AT - 10 * 3600)
                            + readings("a-e1", "inst-a", "electricity", AT + 3600)))
    cfg = AnalyticsSettings(state_file=tmp_path / "alerts.json", lookback_days=1.0)
    yield registry, store, cfg
    await store.store.close()


async def _run(store, registry, cfg, at, notifier):
    book = load_book(cfg.state_file, update_interval_s=cfg.update_interval_s)  # from disk: a fresh process
    try:
        return await evaluate(store, registry, cfg, book, at, [notifier], rules=["silent"])
    finally:  # what the sender does after the evaluation (here at once, as `--once` does)
        await deliver_notifiers(book, [notifier])


async def _stored(store) -> Counter[tuple[str, str, str]]:
    return Counter((a.device, a.id, a.state) for a in await store.fetch(AlertPoint))


async def _recover_and_resolve(store, registry, cfg, ids: dict[str, str], notifier: Recorder, resent: bool) -> None:
    """Re-run later (b-w1's window start has moved), then the meters speak and both alerts resolve."""
    await _run(store, registry, cfg, AT + 1800, notifier)
    assert await _stored(store) == Counter({(d, ids[d], "open"): 1 for d in SILENT})  # once each, same ids
    # what the crash kept from the notifier is delivered now, under the same ids; nothing else is re-opened
    assert [(e.device, e.id, e.state) for e in notifier.got] == (
        [(d, ids[d], "open") for d in sorted(SILENT)] if resent else [])
    await store.write(Batch(readings=readings("a-w1", "inst-a", "water", AT + 3600)
                            + readings("b-w1", "inst-b", "water", AT + 3600)))
    for at in (AT + 3600, AT + 3600 + 300):  # two clean evaluations (hysteresis)
        await _run(store, registry, cfg, at, notifier)
    assert [(e.device, e.id) for e in notifier.got if e.state == "resolved"] == [(d, ids[d]) for d in sorted(SILENT)]
    assert await _stored(store) == Counter({(d, ids[d], s): 1 for d in SILENT for s in ("open", "resolved")})
    book = load_book(cfg.state_file, update_interval_s=0)
    assert book.alerts == {} and book.outbox == {}


async def test_killed_while_notifying_reruns_with_the_same_ids(setup):
    registry, store, cfg = setup
    dying = Recorder(kill=True)
    with pytest.raises(Killed):
        await _run(store, registry, cfg, AT, dying)
    ids = {e.device: e.id for e in dying.got}
    assert set(ids) == SILENT
    await _recover_and_resolve(store, registry, cfg, ids, Recorder(), resent=True)


async def test_store_refusing_the_alerts_keeps_them_for_the_next_run(setup):
    registry, store, cfg = setup
    store.refuse = True
    first = Recorder()
    with pytest.raises(TransientStoreError):
        await _run(store, registry, cfg, AT, first)
    ids = {e.device: e.id for e in first.got}  # operators were told even though the store refused
    assert set(ids) == SILENT and await _stored(store) == Counter()
    assert [e.id for e in load_book(cfg.state_file, update_interval_s=0).outbox["store"]] == list(ids.values())
    store.refuse = False
    await _recover_and_resolve(store, registry, cfg, ids, Recorder(), resent=False)
