"""Volume-rendering compositing on packed samples."""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor


def render_transmittance(
    sigmas: Float[Tensor, " s"],
    t_starts: Float[Tensor, " s"],
    t_ends: Float[Tensor, " s"],
    ray_indices: Int[Tensor, " s"],
    n_rays: int,
) -> tuple[Float[Tensor, " s"], Float[Tensor, " s"]]:
    """Per-sample weights ``T_i * alpha_i`` and transmittance ``T_i`` (light reaching sample i).

    ``alpha_i = 1 - exp(-sigma_i * (t_end - t_start))``; ``T_i = prod_{j<i} (1 - alpha_j)`` over the
    earlier samples of the same ray. Samples must be sorted by ray, then by distance.
    """
    if sigmas.numel() == 0:
        return sigmas.clone(), sigmas.clone()
    optical = sigmas * (t_ends - t_starts)
    # Exclusive per-ray cumulative sum; float64 so that long packed sums do not lose precision.
    cumulative = torch.cumsum(optical.double(), 0)
    exclusive = cumulative - optical.double()
    counts = torch.bincount(ray_indices, minlength=n_rays)
    first = torch.cumsum(counts, 0) - counts
    ray_start = exclusive[first.clamp(max=sigmas.numel() - 1)][ray_indices]
    transmittance = torch.exp(-(exclusive - ray_start)).to(sigmas.dtype)
    alphas = 1.0 - torch.exp(-optical)
    return transmittance * alphas, transmittance


def accumulate_along_rays(
    weights: Float[Tensor, " s"],
    ray_indices: Int[Tensor, " s"],
    values: Float[Tensor, "s c"] | None,
    n_rays: int,
) -> Float[Tensor, "n c"]:
    """Sum of ``weights * values`` per ray (of ``weights`` alone when ``values`` is None)."""
    src = weights[:, None] if values is None else weights[:, None] * values
    out = torch.zeros(n_rays, src.shape[1], dtype=src.dtype, device=src.device)
    return out.index_add(0, ray_indices, src)


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
