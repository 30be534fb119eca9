"""The README's demo, small: every count it prints agrees with the simulator's ground truth."""

from meterwatch_cli.main import main


def test_demo_runs_and_matches_ground_truth(tmp_path, capsys):
    assert main(["demo", "--institutions", "60", "--hours", "24", "--seed", "3", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = {line[:32].strip(): line[32:].split() for line in out.splitlines() if line.startswith(("messages", "readings",
                                                                                                     "rejected", "alerts"))}
    assert "differs" not in out, out
    assert int(rows["readings stored"][0]) > 1000
    assert int(rows["alerts: silent > 6 h (open)"][1]) >= 1, "seed 3 injects long silences"
    assert (tmp_path / "labels.csv").read_text().count("\n") > 1
