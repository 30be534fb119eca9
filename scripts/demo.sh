#!/usr/bin/env bash
# Set up (a local .venv) and run the demo: embedded broker, DuckDB, simulated province.
# Extra arguments go to `meterwatch demo`, e.g. scripts/demo.sh --institutions 2000 --hours 48
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[demo]'
exec .venv/bin/meterwatch demo "$@"
