#!/usr/bin/env bash
# Usage: [NNODES=.. NODE_RANK=.. MASTER_ADDR=.. PORT=..] bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [args]
# On a machine without CUDA, GPUS processes evaluate on the CPU with the gloo backend.
set -euo pipefail
usage() {
  echo "$(basename "$0"): $1" >&2
  echo "usage: [NNODES=.. NODE_RANK=.. MASTER_ADDR=.. PORT=..] bash $0 CONFIG CHECKPOINT GPUS [tools/test.py args]" >&2
  echo "  GPUS: how many evaluation processes to start on this node, one per GPU (on a machine without CUDA: CPU processes)" >&2
  exit 2
}
[ $# -ge 3 ] || usage "CONFIG CHECKPOINT GPUS are required, got $# argument(s)"
[[ "$3" =~ ^[1-9][0-9]*$ ]] || usage "GPUS must be a positive integer, got '$3'"
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
TOOLS=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$TOOLS/..:${PYTHONPATH:-}" exec "${PYTHON:-python}" -m torch.distributed.run \
  --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
  --master_port="${PORT:-29500}" --nproc_per_node="$GPUS" \
  "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher pytorch "${@:4}"
