"""Volume-rendering compositing on packed samples."""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor
from torch.autograd.function import once_differentiable

from tensorfields.core._torch_impl import accumulate_along_rays_torch, render_transmittance_torch
from tensorfields.core.native import ops_for


class _RenderTransmittance(torch.autograd.Function):
    """Native compositing; gradient for ``sigmas`` only (the t's come from marching)."""

    @staticmethod
    def forward(ctx, ops, sigmas, t_starts, t_ends, ray_indices, n_rays, eps):
        weights, transmittance = ops.render_transmittance_fwd(
            sigmas, t_starts, t_ends, ray_indices, n_rays, eps
        )
        ctx.ops, ctx.n_rays = ops, n_rays
        ctx.save_for_backward(sigmas, t_starts, t_ends, ray_indices, weights, transmittance)
        return weights, transmittance

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_weights, grad_transmittance):
        sigmas, t_starts, t_ends, ray_indices, weights, transmittance = ctx.saved_tensors
        grad = ctx.ops.render_transmittance_bwd(
            grad_weights.contiguous(),
            grad_transmittance.contiguous(),
            sigmas,
            t_starts,
            t_ends,
            ray_indices,
            weights,
            transmittance,
            ctx.n_rays,
        )
        return None, grad, None, None, None, None, None


def render_transmittance(
    sigmas: Float[Tensor, " s"],
    t_starts: Float[Tensor, " s"],
    t_ends: Float[Tensor, " s"],
    ray_indices: Int[Tensor, " s"],
    n_rays: int,
    early_stop_eps: float = 0.0,
) -> tuple[Float[Tensor, " s"], Float[Tensor, " s"]]:
    """Per-sample weights ``T_i * alpha_i`` and transmittance ``T_i`` (light reaching sample i).

    ``alpha_i = 1 - exp(-sigma_i * (t_end - t_start))``; ``T_i = prod_{j<i} (1 - alpha_j)`` over the
    earlier samples of the same ray. Samples must be sorted by ray, then by distance, and
    sigmas non-negative. Early ray termination: samples where ``T_i < early_stop_eps`` get
    weight and transmittance 0 (and no gradient).
    """
    ops = ops_for([sigmas, t_starts, t_ends], no_grad=[t_starts, t_ends])
    if ops is None or ray_indices.dtype != torch.long:
        return render_transmittance_torch(
            sigmas, t_starts, t_ends, ray_indices, n_rays, early_stop_eps
        )
    return _RenderTransmittance.apply(
        ops, sigmas, t_starts, t_ends, ray_indices, int(n_rays), float(early_stop_eps)
    )


class _AccumulateAlongRays(torch.autograd.Function):
    """Native per-ray sums; gradients for the weights and the values."""

    @staticmethod
    def forward(ctx, ops, weights, values, ray_indices, n_rays):
        ctx.ops, ctx.n_rays = ops, n_rays
        ctx.save_for_backward(weights, values, ray_indices)
        return ops.accumulate_along_rays_fwd(weights, values, ray_indices, n_rays)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        weights, values, ray_indices = ctx.saved_tensors
        grad_w, grad_v = ctx.ops.accumulate_along_rays_bwd(
            grad_out.contiguous(), weights, values, ray_indices, ctx.n_rays
        )
        return None, grad_w, (grad_v if values.dim() == 2 else None), None, None


def accumulate_along_rays(
    weights: Float[Tensor, " s"],
    ray_indices: Int[Tensor, " s"],
    values: Float[Tensor, "s c"] | None,
    n_rays: int,
) -> Float[Tensor, "n c"]:
    """Sum of ``weights * values`` per ray (of ``weights`` alone when ``values`` is None).

    Samples must be sorted by ray (packed), as marching emits them.
    """
    floats = [weights] if values is None else [weights, values]
    ops = ops_for(floats)
    if ops is None or ray_indices.dtype != torch.long:
        return accumulate_along_rays_torch(weights, values, ray_indices, n_rays)
    empty = weights.new_empty(0)
    return _AccumulateAlongRays.apply(
        ops, weights, empty if values is None else values, ray_indices, int(n_rays)
    )


def composite(
    weights: Float[Tensor, " s"],
    rgbs: Float[Tensor, "s 3"],
    t_starts: Float[Tensor, " s"],
    t_ends: Float[Tensor, " s"],
    ray_indices: Int[Tensor, " s"],
    n_rays: int,
    background: Float[Tensor, "3"] | None = None,
) -> tuple[Float[Tensor, "n 3"], Float[Tensor, " n"], Float[Tensor, " n"]]:
    """Colour, accumulated opacity and expected depth (distance along the ray) per ray.

    The colour is blended over ``background`` by the remaining transmittance ``1 - acc``; depth
    is the weight-normalised expected distance (0 for rays with no opacity).
    """
    rgb = accumulate_along_rays(weights, ray_indices, rgbs, n_rays)
    acc = accumulate_along_rays(weights, ray_indices, None, n_rays)[:, 0]
    mid = 0.5 * (t_starts + t_ends)
    depth = accumulate_along_rays(weights, ray_indices, mid[:, None], n_rays)[:, 0]
    depth = depth / acc.clamp(min=1e-10)
    if background is not None:
        rgb = rgb + (1.0 - acc)[:, None] * background
    return rgb, acc, depth
