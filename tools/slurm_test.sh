#!/usr/bin/env bash
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=..] bash tools/slurm_test.sh PARTITION JOB CONFIG CHECKPOINT [args]
set -euo pipefail
usage() {
  echo "$(basename "$0"): $1" >&2
  echo "usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=..] bash $0 PARTITION JOB CONFIG CHECKPOINT [tools/test.py args]" >&2
  echo "  GPUS: processes (one per GPU) in all; GPUS_PER_NODE: per node; CPUS_PER_TASK: CPU cores per process" >&2
  exit 2
}
[ $# -ge 4 ] || usage "PARTITION JOB CONFIG CHECKPOINT are required, got $# argument(s)"
for VAR in GPUS GPUS_PER_NODE CPUS_PER_TASK; do
  VALUE=${!VAR:-8}
  [[ "$VALUE" =~ ^[1-9][0-9]*$ ]] || usage "$VAR must be a positive integer, got '$VALUE'"
done
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
TOOLS=$(cd "$(dirname "$0")" && pwd)
PYTHONPATH="$TOOLS/..:${PYTHONPATH:-}" srun -p "$PARTITION" --job-name="$JOB_NAME" \
  --gres=gpu:"${GPUS_PER_NODE:-8}" --ntasks="$GPUS" --ntasks-per-node="${GPUS_PER_NODE:-8}" \
  --cpus-per-task="${CPUS_PER_TASK:-5}" --kill-on-bad-exit=1 ${SRUN_ARGS:-} \
  "${PYTHON:-python}" -u "$TOOLS/test.py" "$CONFIG" "$CHECKPOINT" --launcher slurm "${@:5}"
