#!/usr/bin/env bash
# Set up the environment if needed (tools/setup_env.sh), check the code style (ruff, settings in
# ruff.toml), then run the test suite on the CPU.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -k backbone`.
# The tests run in REPLK_TEST_WORKERS processes (pytest-xdist, default 2; 1 = one process), each
# test file in one of them, so module-scoped fixtures (a trained tiny model) are built once.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$REPO/tools/setup_env.sh"
VENV=${REPLK_VENV:-$REPO/.venv}
cd "$REPO"
echo "[run_tests] ruff check (ruff.toml)"
"$VENV/bin/python" -m ruff check . || { echo "[run_tests] style errors above: fix them (ruff check --fix . sorts imports)" >&2; exit 1; }
WORKERS=${REPLK_TEST_WORKERS:-2}
if ! [[ "$WORKERS" =~ ^[1-9][0-9]*$ ]]; then
  echo "[run_tests] REPLK_TEST_WORKERS must be a positive integer, got '$WORKERS'" >&2
  exit 2
fi
PARALLEL=()
if [ "$WORKERS" -gt 1 ]; then
  PARALLEL=(-n "$WORKERS" --dist loadfile)
fi
echo "[run_tests] pytest with $WORKERS worker process(es)"
exec "$VENV/bin/python" -m pytest tests "${PARALLEL[@]}" "$@"
