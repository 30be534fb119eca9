"""The README's demo, small: every count it prints agrees with the simulator's ground truth."""

import asyncio

import pytest

from meterwatch_cli.main import main
from meterwatch.registry import load_registry
from meterwatch.store import WeighingPoint
from simulators.province import generate_province, write_registry
from simulators.traffic import simulate_traffic
from tests.e2e.conftest import eventually, make_settings, running_collector
from tests.e2e.stream import publish
from tests.simulators.test_weighings import END, INSTITUTIONS, SEED, weighings_of


def test_demo_runs_and_matches_ground_truth(tmp_path, capsys):
    assert main(["demo", "--institutions", "60", "--hours", "24", "--seed", "3", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {line[:32].strip(): line[32:].split() for line in out.splitlines() if line.startswith(("messages", "readings",
                                                                                                     "rejected", "alerts"))}
    assert "differs" not in out, out
    assert int(rows["readings stored"][0]) > 1000
    assert int(rows["alerts: silent > 6 h (open)"][1]) >= 1, "seed 3 injects long silences"
    assert (tmp_path / "labels.csv").read_text().count("\n") > 1


@pytest.mark.servers
def test_every_simulated_weighing_is_stored_as_its_own_record(mosquitto, tmp_path):
    """The demo's weighings row, on the day whose simulated traffic once had two weighings with one key.

    What the simulator counts as injected is what a collector on a real broker and DuckDB stores:
    the same (scale, second, card, weight) records, none merged into another.
    """
    province = generate_province(INSTITUTIONS, SEED)
    write_registry(province, tmp_path / "registry")
    registry, _ = load_registry(tmp_path / "registry")
    traffic = simulate_traffic(province, END - 86400, END, SEED)
    messages = [m for m in traffic.messages if m.topic.endswith("/weighing")]
    settings = make_settings(mosquitto.port, f"duckdb://{tmp_path / 'w.duckdb'}", tmp_path / "registry")

    async def scenario() -> tuple[int, list[tuple[str, int, str, float]]]:
        async with running_collector(settings, registry) as collector:
            await publish(mosquitto.port, messages, rate=5000)
            await eventually(lambda: _stored(collector), len(messages))
            stored = await collector.store.fetch(WeighingPoint)
            return collector.metrics.stored, [(w.scale, w.ts, w.card, w.weight_kg) for w in stored]

    counted, stored = asyncio.run(scenario())
    assert len(messages) == traffic.valid_weighings
    assert counted == traffic.valid_weighings
    assert sorted(stored) == sorted(weighings_of(traffic))


async def _stored(collector) -> int:
    return collector.metrics.stored
