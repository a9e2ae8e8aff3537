"""The input of TensoRF's shading head in one native pass: features, view direction and their
positional encodings (native in ``cuda/encoding.*`` where built, else the reference).

Built by PyTorch, this input costs about a third of the head's time on a CPU: the scaling,
sines, cosines and concatenations each write and read the whole (n, 150) block, and their
backward again. The native op writes each row once, and its backward reads the sines and
cosines back from the forward's output.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor
from torch.autograd.function import once_differentiable

from tensorfields.core._torch_impl import shading_input_torch
from tensorfields.core.native import ops_for

__all__ = ["shading_input"]


class _ShadingInput(torch.autograd.Function):
    """Native shading input; the gradient reaches the features only (not the view dirs)."""

    @staticmethod
    def forward(ctx, ops, features, view_dirs, feature_pe, view_pe, bfloat16):
        out = ops.shading_input_fwd(features, view_dirs, feature_pe, view_pe, bfloat16)
        ctx.ops, ctx.shape = ops, (features.shape[1], feature_pe, view_pe)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        grad = ctx.ops.shading_input_bwd(grad_out.contiguous(), out, *ctx.shape)
        return None, grad, None, None, None, None


def shading_input(
    features: Float[Tensor, "n f"],
    view_dirs: Float[Tensor, "n 3"],
    feature_pe: int,
    view_pe: int,
    dtype: torch.dtype | None = None,
) -> Float[Tensor, "n d"]:
    """``[features, view_dirs, PE(features), PE(view_dirs)]`` with ``PE(x) = [sin(2^k x),
    cos(2^k x)]`` for k below the band count, laid out as in the official TensoRF code.

    ``dtype``: the result's dtype (default: the features'); ``torch.bfloat16`` for a bfloat16
    MLP, computed in float32 and rounded once, written as bfloat16 natively on CPU.
    """
    ops = ops_for([features, view_dirs], no_grad=[view_dirs])
    if ops is None:
        out = shading_input_torch(features, view_dirs, feature_pe, view_pe)
        return out if dtype is None else out.to(dtype)
    bfloat16 = dtype == torch.bfloat16 and features.dtype == torch.float32 and features.is_cpu
    out = _ShadingInput.apply(ops, features, view_dirs, feature_pe, view_pe, bfloat16)
    return out if dtype is None else out.to(dtype)
