#!/usr/bin/env bash
# Create (or refresh) the replk_mm environment: torch, mmcv 2.1.0 *with ops*, the OpenMMLab
# 2.x stack and replk_mm itself (editable). Safe to re-run: every step checks before it works.
#
# Environment knobs:
#   REPLK_VENV        virtual environment to create/use          (default: <repo>/.venv)
#   REPLK_PYTHON      interpreter used to create it              (default: python3)
#   REPLK_CACHE       where built mmcv wheels are kept            (default: ~/.cache/replk_mm)
#   TORCH_SPEC        torch requirement(s) for pip                (default: torch==2.14.1 torchvision==0.29.1)
#   TORCH_INDEX_URL   extra index for CUDA builds of torch        (default: none)
#   MAX_JOBS          parallel compile jobs for mmcv              (default: number of cores)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${REPLK_VENV:-$REPO/.venv}
PYTHON=${REPLK_PYTHON:-python3}
CACHE=${REPLK_CACHE:-$HOME/.cache/replk_mm}
# torch 2.14.1 + torchvision 0.29.1 are a matched pair (mmpretrain's models import torchvision).
TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
# mmseg 1.2.2 and mmdet 3.3.0 assert mmcv>=2.0.0rc4,<2.2.0, and 2.1.0 is the newest such release.
MMCV_VERSION=2.1.0

step() { printf '\n\033[1m[setup %s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '\n[setup] ERROR: %s\n' "$*" >&2; exit 1; }

step "environment: $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV" || die "could not create a virtual environment with $PYTHON"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)

step "build tools"
# setuptools<82: mmengine 0.10.7 resolves 'mmseg::' base configs through pkg_resources, removed in 82.
"${PIP[@]}" install -q "setuptools>=77,<82" wheel ninja psutil

step "torch ($TORCH_SPEC)"
# shellcheck disable=SC2086
if ! "$PY" - $TORCH_SPEC <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
from packaging.requirements import Requirement
for spec in sys.argv[1:]:
    req = Requirement(spec)
    assert req.specifier.contains(version(req.name), prereleases=True), spec
PYEOF
then
  # shellcheck disable=SC2086
  "${PIP[@]}" install ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} $TORCH_SPEC
fi
TORCH_VER=$("$PY" -c "import torch; print(torch.__version__.replace('+', '_'))")
PY_TAG=$("$PY" -c "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')")
CUDA_TAG=$("$PY" -c "import torch; print('cu' + torch.version.cuda.replace('.', '') if torch.version.cuda and '${FORCE_CUDA:-0}' == '1' else 'cpu')")

mmcv_ops_ok() { "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" >/dev/null 2>&1; }

step "mmcv $MMCV_VERSION with compiled ops"
if mmcv_ops_ok; then
  echo "mmcv $MMCV_VERSION with ops already installed"
else
  # A wheel is only reusable with the same mmcv, torch, Python and CUDA choice: key the cache on all four.
  KEY="mmcv-$MMCV_VERSION/torch-$TORCH_VER/$PY_TAG/$CUDA_TAG"
  WHEEL_DIR="$CACHE/wheels/$KEY"
  WHEEL=$(ls "$WHEEL_DIR"/mmcv-*.whl 2>/dev/null | head -n 1 || true)
  if [ -z "$WHEEL" ]; then
    echo "no cached wheel under $WHEEL_DIR: building mmcv from source (minutes; the wheel is cached for next time)"
    BUILD=$(mktemp -d)
    trap 'rm -rf "$BUILD"' EXIT
    "${PIP[@]}" download -q --no-deps --no-binary :all: -d "$BUILD" "mmcv==$MMCV_VERSION"
    tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
    SRC="$BUILD/mmcv-$MMCV_VERSION"
    # torch >= 2.14 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17.
    sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
    grep -q -- '-std=c++20' "$SRC/setup.py" || die "could not patch mmcv's C++ standard"
    # --no-build-isolation: with isolation pip builds against a torch-less env and silently drops the ops.
    ( cd "$SRC" && MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "${PIP[@]}" wheel --no-build-isolation --no-deps --no-cache-dir -w "$BUILD/dist" . ) \
      || die "building mmcv $MMCV_VERSION failed (see the compiler output above)"
    mkdir -p "$WHEEL_DIR"
    cp "$BUILD"/dist/mmcv-*.whl "$WHEEL_DIR"/
    WHEEL=$(ls "$WHEEL_DIR"/mmcv-*.whl | head -n 1)
  else
    echo "reusing cached build $WHEEL"
  fi
  "${PIP[@]}" install -q --force-reinstall --no-deps "$WHEEL"
  "${PIP[@]}" install -q "$WHEEL"  # its own dependencies (mmengine, opencv, ...)
  if ! mmcv_ops_ok; then
    "$PY" -c "import mmcv.ops" || true
    die "mmcv was built without ops (import mmcv.ops fails); delete $WHEEL_DIR and re-run"
  fi
fi

step "OpenMMLab stack and replk_mm"
"${PIP[@]}" install -q -e "$REPO[all,onnx,tests,lint]"
"$PY" -c "import mmcv.ops, mmseg, mmdet, mmpretrain, replk_mm; print('mmcv', mmcv.__version__, '| mmseg', mmseg.__version__, '| mmdet', mmdet.__version__, '| mmpretrain', mmpretrain.__version__, '| replk_mm', replk_mm.__version__)" \
  || die "the environment does not import; see the traceback above"
step "ready: activate with 'source $VENV/bin/activate'"
