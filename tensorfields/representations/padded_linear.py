"""Linear layers whose matrix products are padded to shapes BLAS handles well.

TensoRF's shading head has a 150-wide input and 3 outputs. On a CPU, MKL's sgemm is much
slower on those widths than on the next multiple of 4 or 8 (2 AVX2 cores, 80K-100K rows):
the input gradient (n, 128) @ (128, 150) took 45 ms, the same product against the weight
padded to 152 columns 24 ms; the last layer's weight gradient (3, n) @ (n, 128) 19 ms,
(4, n) @ (n, 128) 6 ms. Padding with zeros changes no value: the padded outputs and columns
are cut off again.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

__all__ = ["linear_with_padded_input_grad", "linear_with_padded_rows"]


def linear_with_padded_rows(
    x: Float[Tensor, "n i"], layer: nn.Linear, rows: int = 4
) -> Float[Tensor, "n o"]:
    """``layer(x)`` for a layer with fewer than ``rows`` outputs, computed with its weight and
    bias padded by zero rows to ``rows`` outputs (so the weight gradient is a (rows, n) @ (n, i)
    product), the padding's outputs dropped."""
    pad = rows - layer.out_features
    if pad <= 0:
        return layer(x)
    weight = F.pad(layer.weight, (0, 0, 0, pad))
    bias = None if layer.bias is None else F.pad(layer.bias, (0, pad))
    return F.linear(x, weight, bias)[:, : layer.out_features]


class _PaddedInputGradLinear(torch.autograd.Function):
    """``F.linear`` whose input gradient is taken against the weight padded to ``multiple``
    columns (the padded columns of that gradient cut off)."""

    @staticmethod
    def forward(ctx, x, weight, bias, multiple):
        ctx.save_for_backward(x, weight)
        ctx.has_bias, ctx.multiple = bias is not None, multiple
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            width = weight.shape[1]
            padded = F.pad(weight, (0, -width % ctx.multiple))
            grad_x = (grad_out @ padded)[:, :width].contiguous()
        if ctx.needs_input_grad[1]:
            grad_weight = grad_out.t() @ x
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad_out.sum(0)
        return grad_x, grad_weight, grad_bias, None


def linear_with_padded_input_grad(
    x: Float[Tensor, "n i"], layer: nn.Linear, multiple: int = 8
) -> Float[Tensor, "n o"]:
    """``layer(x)`` with the input gradient computed against the weight padded by zero columns
    to a multiple of ``multiple``. Plain ``layer(x)`` when the width is one already, when
    ``x`` needs no gradient, and under autocast (whose casts the custom backward would miss)."""
    if (
        layer.in_features % multiple == 0
        or not (torch.is_grad_enabled() and x.requires_grad)
        or torch.is_autocast_enabled(x.device.type)
    ):
        return layer(x)
    return _PaddedInputGradLinear.apply(x, layer.weight, layer.bias, multiple)
