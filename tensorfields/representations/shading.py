"""TensoRF's shading head ``MLP_Fea``: appearance features + view direction -> RGB."""

from __future__ import annotations

import sys
from contextlib import nullcontext
from typing import Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from tensorfields.core._torch_impl import positional_encoding
from tensorfields.core.encoding import shading_input
from tensorfields.representations.padded_linear import (
    linear_with_padded_input_grad,
    linear_with_padded_rows,
)

__all__ = ["MLPFeaHead", "bfloat16_supported", "positional_encoding"]


Precision = Literal["float32", "bfloat16"]


def bfloat16_supported(device: torch.device) -> bool:
    """Whether bfloat16 matrix products run natively (AVX512-BF16/AMX CPUs, Ampere+ GPUs)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


class MLPFeaHead(nn.Module):
    """Input: features, view dir, PE(features), PE(view dir) -> hidden -> hidden -> sigmoid RGB.

    ``precision="bfloat16"`` runs the layers under autocast (weights stay float32, products
    accumulate in float32): about twice as fast where bfloat16 is native, and float32 with a
    one-line note where it is not.
    """

    def __init__(
        self,
        in_features: int = 27,
        feature_pe: int = 2,
        view_pe: int = 2,
        hidden: int = 128,
        precision: Precision = "float32",
    ):
        super().__init__()
        if precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be 'float32' or 'bfloat16', got {precision!r}")
        self.feature_pe, self.view_pe = feature_pe, view_pe
        self.precision = precision
        self._checked_devices: dict[torch.device, bool] = {}
        in_dim = in_features + 3 + 2 * feature_pe * in_features + 2 * view_pe * 3
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 3),
        )
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(
        self, features: Float[Tensor, "n f"], view_dirs: Float[Tensor, "n 3"]
    ) -> Float[Tensor, "n 3"]:
        bfloat16 = self._bfloat16(features.device)
        # A bfloat16 input is what autocast would cast it to; made in one pass where native.
        dtype = torch.bfloat16 if bfloat16 else None
        inputs = shading_input(features, view_dirs, self.feature_pe, self.view_pe, dtype)
        autocast = torch.autocast(features.device.type, torch.bfloat16) if bfloat16 else None
        first, _, middle, _, last = self.mlp
        with autocast or nullcontext():
            # Same layers as self.mlp(inputs), with products padded where BLAS is slow.
            hidden = F.relu(linear_with_padded_input_grad(inputs, first), inplace=True)
            hidden = F.relu(middle(hidden), inplace=True)
            out = linear_with_padded_rows(hidden, last)
        return torch.sigmoid(out.float())

    def _bfloat16(self, device: torch.device) -> bool:
        """Whether the layers run under bfloat16 autocast on ``device``."""
        if self.precision == "float32":
            return False
        if device not in self._checked_devices:
            self._checked_devices[device] = bfloat16_supported(device)
            if not self._checked_devices[device]:
                print(
                    f"tensorfields: no native bfloat16 on {device}; shading in float32",
                    file=sys.stderr,
                )
        return self._checked_devices[device]
