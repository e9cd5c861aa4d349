#!/usr/bin/env bash
# Set up the environment if needed (tools/setup_env.sh), check the code style (ruff, settings in
# ruff.toml), then run the test suite on the CPU.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -k backbone`.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$REPO/tools/setup_env.sh"
VENV=${REPLK_VENV:-$REPO/.venv}
cd "$REPO"
echo "[run_tests] ruff check (ruff.toml)"
"$VENV/bin/python" -m ruff check . || { echo "[run_tests] style errors above: fix them (ruff check --fix . sorts imports)" >&2; exit 1; }
exec "$VENV/bin/python" -m pytest tests "$@"
