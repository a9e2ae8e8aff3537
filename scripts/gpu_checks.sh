#!/usr/bin/env bash
# GPU checks for a machine with a CUDA GPU (the project's CI has none): the native-vs-reference
# tests on CUDA tensors, then the per-op benchmark on the GPU. Exit status: pytest's.
set -euo pipefail
cd "$(dirname "$0")/.."
export TF_CACHE_DIR="${TF_CACHE_DIR:-$(mktemp -d)}"
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; \
print(torch.__version__, torch.cuda.get_device_name())"
python3 -m pytest tests/core -rs -k "cuda"
python3 benchmarks/ops.py --device cuda --repeats 10
