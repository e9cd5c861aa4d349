#!/usr/bin/env bash
# Set up the environment if needed (tools/setup_env.sh), then run the test suite on the CPU.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh -k backbone`.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$REPO/tools/setup_env.sh"
VENV=${REPLK_VENV:-$REPO/.venv}
cd "$REPO"
exec "$VENV/bin/python" -m pytest tests "$@"
