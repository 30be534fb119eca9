"""Static checks run with the suite: an undefined name once killed the reconnect loop silently."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_no_undefined_names_or_unused_imports():
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).exists():
        pytest.fail("ruff is a dev dependency: pip install -e '.[dev]'")
    result = subprocess.run([ruff, "check", "--output-format", "concise", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(binary).exists():
        pytest.fail("import-linter is a dev dependency: pip install -e '.[dev]'")
    return subprocess.run([binary, "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PATH": str(Path(sys.executable).parent), "PYTHONPATH": str(root)})


def test_layers_point_down_only():
    """pyproject's import-linter contract: core, then collector | analytics | dashboards, ..., the CLI on top."""
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_layer_contract_catches_an_upward_import(tmp_path):
    """The same contract on a copy of the tree with one planted upward import (core -> command line) fails."""
    for package in ("meterwatch", "collector", "analytics", "dashboards", "simulators", "scenarios", "benchmarks",
                    "meterwatch_cli"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / "meterwatch" / "ids.py", "a") as fh:
        fh.write("\nimport meterwatch_cli  # noqa: E402,F401  (planted)\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0
    assert "meterwatch.ids -> meterwatch_cli" in result.stdout
