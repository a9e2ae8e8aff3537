#!/usr/bin/env bash
# Compiles the native core with its CUDA sources (no GPU needed) so that a kernel that does not
# compile is caught on CPU-only machines. Uses a separate venv holding the CUDA build of torch;
# the venv is kept (in $TF_CUDA_VENV, default ~/.cache/tensorfields/venv-cuda) and reused.
#   CUDA_HOME (default /usr/local/cuda) must hold nvcc; TORCH_CUDA_ARCH_LIST defaults to 9.0.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${TF_CUDA_VENV:-$HOME/.cache/tensorfields/venv-cuda}"
TORCH_SPEC="${TF_CUDA_TORCH:-torch==2.14.1}"
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
if [ ! -x "$CUDA_HOME/bin/nvcc" ]; then
    echo "error: no nvcc in CUDA_HOME=$CUDA_HOME; set CUDA_HOME to a CUDA toolkit" >&2
    exit 1
fi
if ! "$VENV/bin/python" -c "import torch, ninja; assert torch.version.cuda" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "$TORCH_SPEC" numpy ninja
fi
BUILD_DIR="$(mktemp -d)"
trap 'rm -rf "$BUILD_DIR"' EXIT
# The loader of the package, forced to compile the CUDA sources; compiler errors print in full.
PYTHONPATH="$PWD" MAX_JOBS="${MAX_JOBS:-2}" "$VENV/bin/python" - "$BUILD_DIR" <<'PY'
import sys
import time
from pathlib import Path

import torch

from tensorfields.core.native import NativeLoader

start = time.time()
module = NativeLoader(name="tensorfields_native_cuda_check", build_dir=Path(sys.argv[1]),
                      with_cuda=True)._build(True)
assert module.with_cuda, "the extension was built without its CUDA sources"
print(f"CUDA build OK with torch {torch.__version__} (CUDA {torch.version.cuda}) "
      f"in {time.time() - start:.0f} s")
PY
