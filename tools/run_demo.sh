#!/usr/bin/env bash
# The README's main job, on a fresh clone: set up .venv if needed (tools/setup_env.sh), then
#   seg (default): train a small RepLKNet + UperNet on synthetic ADE20K-layout data on the CPU
#                  through tools/train.py, evaluate mIoU, re-parameterize, evaluate again and
#                  write prediction overlays (tools/demo/seg_demo.py, ~5-7 min on 2 cores);
#   det:           the same for a small RepLKNet + Cascade Mask R-CNN on synthetic COCO-layout
#                  data, with drawn detections (tools/demo/det_demo.py, ~7-10 min);
#   kernels:       train the tiny demo model with 3x3 and with 31-29-27-13 kernels, three seeds
#                  each, on synthetic data that needs context, and print both mIoUs (with their
#                  spread) and ERF area ratios side by side (tools/demo/kernel_size_demo.py).
# Both demos are one driver (tools/demo/demo_driver.py) run with a different description.
# Usage: bash tools/run_demo.sh [seg|det|kernels] [demo options, e.g. --work-dir DIR --iters N]
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${REPLK_VENV:-$REPO/.venv}

JOB=seg
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
  JOB=$1
  shift
fi
case "$JOB" in
  seg) SCRIPT=tools/demo/seg_demo.py ;;
  det) SCRIPT=tools/demo/det_demo.py ;;
  kernels) SCRIPT=tools/demo/kernel_size_demo.py ;;
  *) echo "run_demo.sh: unknown job '$JOB'; use 'seg' (default), 'det' or 'kernels'" >&2; exit 2 ;;
esac

if ! "$VENV/bin/python" -c "import mmcv.ops, mmseg, mmdet, replk_mm" >/dev/null 2>&1; then
  echo "[run_demo] environment missing or incomplete: running tools/setup_env.sh"
  bash "$REPO/tools/setup_env.sh"
fi
cd "$REPO"
echo "[run_demo] $(date +%H:%M:%S) $JOB demo: $VENV/bin/python $SCRIPT $*"
start=$(date +%s)
"$VENV/bin/python" "$SCRIPT" "$@"
echo "[run_demo] $(date +%H:%M:%S) $JOB demo finished in $(( $(date +%s) - start )) s"
