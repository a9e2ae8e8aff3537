#!/usr/bin/env bash
# One-command setup: PyTorch (the CPU build where torch is not yet installed), then tensorfields
# in editable mode with its dev tools. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    # 2.13.0 is the CPU wheel on the project's machines; any torch in [2.4, 2.15) works.
    "$PYTHON" -m pip install "torch==2.13.0" || "$PYTHON" -m pip install "torch>=2.4,<2.15"
fi
"$PYTHON" -m pip install -e ".[dev]"
