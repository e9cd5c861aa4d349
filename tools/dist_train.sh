#!/usr/bin/env bash
# Usage: [NNODES=.. NODE_RANK=.. MASTER_ADDR=.. PORT=..] bash tools/dist_train.sh CONFIG GPUS [args]
# On a machine without CUDA, GPUS processes train on the CPU with the gloo backend.
set -euo pipefail
usage() {
  echo "$(basename "$0"): $1" >&2
  echo "usage: [NNODES=.. NODE_RANK=.. MASTER_ADDR=.. PORT=..] bash $0 CONFIG GPUS [tools/train.py args]" >&2
  echo "  GPUS: how many training processes to start on this node, one per GPU (on a machine without CUDA: CPU processes)" >&2
  exit 2
}
[ $# -ge 2 ] || usage "CONFIG GPUS are required, got $# argument(s)"
[[ "$2" =~ ^[1-9][0-9]*$ ]] || usage "GPUS must be a positive integer, got '$2'"
CONFIG=$1
GPUS=$2
TOOLS=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$TOOLS/..:${PYTHONPATH:-}" exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --master_port="${PORT:-29500}" --nproc_per_node="$GPUS" \
  "$TOOLS/train.py" "$CONFIG" --launcher pytorch "${@:3}"
