#!/usr/bin/env bash
# Usage: [NNODES=.. NODE_RANK=.. MASTER_ADDR=.. PORT=..] bash tools/dist_train.sh CONFIG GPUS [args]
# On a machine without CUDA, GPUS processes train on the CPU with the gloo backend.
set -euo pipefail
CONFIG=$1
GPUS=$2
TOOLS=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$TOOLS/..:${PYTHONPATH:-}" exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --master_port="${PORT:-29500}" --nproc_per_node="$GPUS" \
  "$TOOLS/train.py" "$CONFIG" --launcher pytorch "${@:3}"
