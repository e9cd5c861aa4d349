#!/usr/bin/env bash
# The GPU check of replk_mm.ops (Triton/FFT/cuDNN correctness, the paper's Table 1 setting, a
# RepLKNet-31B training step, measured autotuner constants): see tools/analysis/gpu_check.py and
# docs/benchmark_lk_conv.md ("GPU: not measured yet").
#
#   bash tools/analysis/gpu_check.sh OUT_DIR            # on one GPU (< 8 min on an H100/H200)
#   bash tools/analysis/gpu_check.sh OUT_DIR --dry-run  # CPU, tiny sizes, TRITON_INTERPRET=1
#
# Needs Python with torch and triton only; runs from a plain copy of the repository (no install).
# PYTHON picks the interpreter (default: python3). Writes OUT_DIR/gpu_check.{json,md,log} and
# OUT_DIR/dw_conv_costs.json.
set -euo pipefail
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
    echo "usage: bash tools/analysis/gpu_check.sh OUT_DIR [--dry-run] [--sections ...]" >&2
    exit 2
fi
OUT=$1
shift
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PY=${PYTHON:-python3}
for arg in "$@"; do
    if [ "$arg" = "--dry-run" ]; then
        export TRITON_INTERPRET=1  # Triton's interpreter must be chosen before triton imports
    fi
done
mkdir -p "$OUT"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import torch, triton" || {
    echo "gpu_check: needs torch and triton in $PY (pip install torch triton)" >&2; exit 1; }
"$PY" "$REPO/tools/analysis/gpu_check.py" --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
