"""Fused VM / CP factor lookups: native (``cuda/vm_interp.*``) where built, else the reference.

Conventions (shared with :mod:`tensorfields.core._torch_impl`, the oracle): coordinates are
normalised to [-1, 1]; plane i ``(1, C, H, W)`` spans ``xyz[:, PLANE_AXES[i]]`` (first axis ->
W, second -> H), line i ``(1, C, L, 1)`` runs along ``xyz[:, LINE_AXES[i]]``; lookups are
(bi)linear with align_corners=True, and grid nodes outside the factor read as zero.

The native ops give gradients to the factors only, not to ``xyz``: when ``xyz`` requires grad
the reference runs, so autograd stays correct either way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from torch.autograd.function import once_differentiable

from tensorfields.core._torch_impl import (
    LINE_AXES,
    PLANE_AXES,
    cp_interp_torch,
    vm_interp_summed_torch,
    vm_interp_torch,
    vm_project_torch,
)
from tensorfields.core.native import ops_for

__all__ = ["LINE_AXES", "PLANE_AXES", "cp_interp", "vm_interp", "vm_interp_summed", "vm_project"]


def _channels_last(factors: Sequence[Tensor]) -> list[Tensor]:
    """The layout the native ops read in place (one row of C values per grid node); made once
    here and saved, so forward and backward do not each transpose the factors."""
    return [f.detach().contiguous(memory_format=torch.channels_last) for f in factors]


class _VMInterp(torch.autograd.Function):
    """Native VM lookups; gradients for the six factors, none for xyz (nor ``ops``)."""

    @staticmethod
    def forward(ctx, ops, xyz, p0, p1, p2, l0, l1, l2):
        factors = _channels_last([p0, p1, p2, l0, l1, l2])
        ctx.ops = ops
        ctx.save_for_backward(xyz, *factors)
        return ops.vm_interp_fwd(xyz, factors[:3], factors[3:])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        xyz, *factors = ctx.saved_tensors
        grads = ctx.ops.vm_interp_bwd(grad_out.contiguous(), xyz, factors[:3], factors[3:])
        return None, None, *grads


class _VMInterpSummed(torch.autograd.Function):
    """Native summed VM lookups (one value per point); gradients for the six factors.

    ``value``, when given, is this forward's result computed earlier without grad (a no-grad
    pre-pass over the same points); it is returned instead of recomputing, and only the
    backward runs.
    """

    @staticmethod
    def forward(ctx, ops, xyz, value, p0, p1, p2, l0, l1, l2):
        factors = _channels_last([p0, p1, p2, l0, l1, l2])
        ctx.ops = ops
        ctx.save_for_backward(xyz, *factors)
        if value is not None:
            return value.detach().clone()
        return ops.vm_interp_fwd(xyz, factors[:3], factors[3:], True)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        xyz, *factors = ctx.saved_tensors
        grads = ctx.ops.vm_interp_bwd(grad_out.contiguous(), xyz, factors[:3], factors[3:])
        return None, None, None, *grads


class _VMProject(torch.autograd.Function):
    """Native VM lookups through a basis (CPU); gradients for the six factors and the basis."""

    @staticmethod
    def forward(ctx, ops, xyz, basis, p0, p1, p2, l0, l1, l2):
        factors = _channels_last([p0, p1, p2, l0, l1, l2])
        basis = basis.detach()
        ctx.ops = ops
        ctx.save_for_backward(xyz, basis, *factors)
        return ops.vm_project_fwd(xyz, factors[:3], factors[3:], basis)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        xyz, basis, *factors = ctx.saved_tensors
        *grads, grad_basis = ctx.ops.vm_project_bwd(
            grad_out.contiguous(), xyz, factors[:3], factors[3:], basis
        )
        return None, None, grad_basis, *grads


class _CPInterp(torch.autograd.Function):
    """Native CP lookups; gradients for the three lines, none for xyz (nor ``ops``)."""

    @staticmethod
    def forward(ctx, ops, xyz, l0, l1, l2):
        lines = _channels_last([l0, l1, l2])
        ctx.ops = ops
        ctx.save_for_backward(xyz, *lines)
        return ops.cp_interp_fwd(xyz, lines)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        xyz, *lines = ctx.saved_tensors
        return None, None, *ctx.ops.cp_interp_bwd(grad_out.contiguous(), xyz, lines)


def vm_interp(
    xyz: Float[Tensor, "n 3"],
    planes: Sequence[Float[Tensor, "1 c h w"]],
    lines: Sequence[Float[Tensor, "1 c l 1"]],
) -> Float[Tensor, "n 3 c"]:
    """Per-pair products ``plane_i(xyz[:, PLANE_AXES[i]]) * line_i(xyz[:, LINE_AXES[i]])``."""
    if len(planes) != 3 or len(lines) != 3:
        raise ValueError(f"expected 3 planes and 3 lines, got {len(planes)} and {len(lines)}")
    ops = ops_for([xyz, *planes, *lines], no_grad=[xyz])
    if ops is None:
        return vm_interp_torch(xyz, planes, lines)
    return _VMInterp.apply(ops, xyz, *planes, *lines)


def vm_interp_summed(
    xyz: Float[Tensor, "n 3"],
    planes: Sequence[Float[Tensor, "1 c h w"]],
    lines: Sequence[Float[Tensor, "1 c l 1"]],
    value: Float[Tensor, " n"] | None = None,
) -> Float[Tensor, " n"]:
    """``vm_interp(...).sum(dim=(1, 2))`` without the ``(n, 3, C)`` products (a density).

    ``value``: the result for these points from an earlier no-grad pass, reused by the native
    op so that a training pass only pays for the backward (the reference recomputes it).
    """
    if len(planes) != 3 or len(lines) != 3:
        raise ValueError(f"expected 3 planes and 3 lines, got {len(planes)} and {len(lines)}")
    ops = ops_for([xyz, *planes, *lines], no_grad=[xyz])
    if ops is None:
        return vm_interp_summed_torch(xyz, planes, lines)
    if value is not None and value.shape != (xyz.shape[0],):
        raise ValueError(f"value must be ({xyz.shape[0]},), got {tuple(value.shape)}")
    return _VMInterpSummed.apply(ops, xyz, value, *planes, *lines)


def vm_project(
    xyz: Float[Tensor, "n 3"],
    planes: Sequence[Float[Tensor, "1 c h w"]],
    lines: Sequence[Float[Tensor, "1 c l 1"]],
    basis: Float[Tensor, "f k"],
) -> Float[Tensor, "n f"]:
    """``vm_interp(...).flatten(1) @ basis.T`` (``basis`` is ``(F, 3C)``), without writing the
    ``(n, 3C)`` products: TensoRF's appearance features through its basis matrix.

    Fused natively on CPU; on CUDA the native lookups go through a cuBLAS matmul, which handles
    this thin product well.
    """
    if len(planes) != 3 or len(lines) != 3:
        raise ValueError(f"expected 3 planes and 3 lines, got {len(planes)} and {len(lines)}")
    if basis.dim() != 2 or basis.shape[1] != 3 * planes[0].shape[1]:
        raise ValueError(
            f"basis must be (F, {3 * planes[0].shape[1]}) for {planes[0].shape[1]} components, "
            f"got {tuple(basis.shape)}"
        )
    ops = ops_for([xyz, *planes, *lines, basis], no_grad=[xyz])
    if ops is None:
        return vm_project_torch(xyz, planes, lines, basis)
    if not xyz.is_cpu:
        return vm_interp(xyz, planes, lines).flatten(1) @ basis.t()
    return _VMProject.apply(ops, xyz, basis, *planes, *lines)


def cp_interp(
    xyz: Float[Tensor, "n 3"], lines: Sequence[Float[Tensor, "1 c l 1"]]
) -> Float[Tensor, "n c"]:
    """Per-component products ``line_0(x) * line_1(y) * line_2(z)``."""
    if len(lines) != 3:
        raise ValueError(f"expected 3 lines, got {len(lines)}")
    ops = ops_for([xyz, *lines], no_grad=[xyz])
    if ops is None:
        return cp_interp_torch(xyz, lines)
    return _CPInterp.apply(ops, xyz, *lines)
