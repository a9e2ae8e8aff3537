#!/usr/bin/env bash
# GPU checks for a machine with a CUDA GPU (the project's CI has none): the native-vs-reference
# tests on CUDA tensors and the CPU rasterizer against gsplat, then the per-op benchmark on the
# GPU. gsplat JIT-compiles its kernels on first use where it is not prebuilt (minutes; MAX_JOBS
# below). Exit status: pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CACHE_DIR="${TF_CACHE_DIR:-$(mktemp -d)}"
export MAX_JOBS="${MAX_JOBS:-16}"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.__version__, torch.cuda.get_device_name())"
status=0
python3 -m pytest tests/core -rs -k "cuda or gsplat_on_gpu" || status=$?
python3 benchmarks/ops.py --device cuda --repeats 10
# The lego benchmark with the paper recipe, when the data is at hand ($TF_DATA_DIR or ./data).
if python3 -c "from tensorfields.data.locate import find_scene_data; \
from tensorfields.data.scenes import load_preset; find_scene_data(load_preset('lego'), None)" \
    2>/dev/null; then
    python3 benchmarks/lego_cpu.py --device cuda --preset paper --marks 5 10
    python3 benchmarks/splat_lego.py --device cuda --preset paper --minutes 6
else
    echo "lego data not found: GPU lego benchmark skipped (set TF_DATA_DIR)"
fi
exit "$status"
