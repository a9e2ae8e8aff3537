"""The no-grad density pass of a training render: where along each ray it turns opaque.

A training render composites only the samples in front of the point where each ray's
transmittance falls below a threshold; the others cannot change the image. This pass finds
that point (and hands the kept samples' density features to the differentiable pass): for
TensoRF's VM density (:func:`vm_density_transmittance`) and Strivec's local tensors
(:func:`local_cp_density_transmittance`, which also hands over the kept samples' cubes).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from tensorfields.core._torch_impl import (
    local_cp_mix_torch,
    render_transmittance_torch,
    vm_density_transmittance_torch,
)
from tensorfields.core.interp import _channels_last
from tensorfields.core.local_tensors import (
    IDW_EPS,
    MAX_NATIVE_K,
    LocalScale,
    covering_tensors_torch,
)
from tensorfields.core.native import ops_for

__all__ = [
    "has_fused_density_pass",
    "local_cp_density_transmittance",
    "local_cp_density_transmittance_torch",
    "vm_density_transmittance",
]

PassWithCubes = tuple[
    Float[Tensor, " s"], Float[Tensor, " s"], list[Int[Tensor, "s k"]], list[Float[Tensor, "s k"]]
]


def has_fused_density_pass(xyz: Tensor) -> bool:
    """Whether :func:`vm_density_transmittance` runs natively for points like ``xyz``: on a
    CPU only, where a loop per ray that stops early beats two passes over every sample (a GPU
    prefers those two passes, each parallel over samples, so fields compose them there)."""
    return xyz.is_cpu and ops_for([xyz]) is not None


@torch.no_grad()
def vm_density_transmittance(
    xyz: Float[Tensor, "s 3"],
    planes: Sequence[Float[Tensor, "1 c h w"]],
    lines: Sequence[Float[Tensor, "1 c l 1"]],
    t_starts: Float[Tensor, " s"],
    t_ends: Float[Tensor, " s"],
    ray_indices: Int[Tensor, " s"],
    n_rays: int,
    shift: float,
    scale: float,
    eps: float,
) -> tuple[Float[Tensor, " s"], Float[Tensor, " s"]]:
    """Summed VM values ``v`` (:func:`vm_interp_summed`) of packed samples (sorted by ray, then
    distance; ``xyz`` normalised) and the transmittance ``T`` in front of each, as
    :func:`render_transmittance` gives it for ``sigma = softplus(v + shift) * scale``. Both are
    0 from each ray's first sample with ``T < eps`` on. No gradient.

    Natively (CPU, :func:`has_fused_density_pass`), each ray runs front to back and stops
    there, so samples behind an opaque surface are never looked up; elsewhere the reference
    runs.
    """
    if len(planes) != 3 or len(lines) != 3:
        raise ValueError(f"expected 3 planes and 3 lines, got {len(planes)} and {len(lines)}")
    ops = ops_for([xyz, *planes, *lines, t_starts, t_ends])
    if ops is None or not xyz.is_cpu or ray_indices.dtype != torch.long:
        return vm_density_transmittance_torch(
            xyz, planes, lines, t_starts, t_ends, ray_indices, n_rays, shift, scale, eps
        )
    factors = _channels_last([*planes, *lines])
    value, transmittance = ops.vm_density_transmittance(
        xyz,
        factors[:3],
        factors[3:],
        t_starts,
        t_ends,
        ray_indices,
        int(n_rays),
        float(shift),
        float(scale),
        float(eps),
    )
    return value, transmittance


@torch.no_grad()
def local_cp_density_transmittance(
    xyz: Float[Tensor, "s 3"],
    scales: Sequence[LocalScale],
    k: int,
    t_starts: Float[Tensor, " s"],
    t_ends: Float[Tensor, " s"],
    ray_indices: Int[Tensor, " s"],
    n_rays: int,
    shift: float,
    scale: float,
    eps: float,
) -> PassWithCubes:
    """Strivec's density features ``v`` of packed samples (sorted by ray, then distance): per
    scale the ``k`` nearest covering cubes mixed with IDW weights (:func:`covering_tensors`),
    every component summed, the scales added; ``-inf`` where some scale covers nothing. Also
    the transmittance ``T`` in front of each sample for ``sigma = softplus(v + shift) * scale``
    (as :func:`render_transmittance` gives it) and each scale's cubes ``(ids, weights)``. From
    each ray's first sample with ``T < eps`` on: ``v = T = 0``, ids -1, weights 0. No gradient.

    Natively (CPU, :func:`has_fused_density_pass`), each ray runs front to back and stops
    there, so samples behind an opaque surface are never looked up; elsewhere the reference
    runs.
    """
    if not scales:
        raise ValueError("need at least one scale of cubes")
    floats = [xyz, t_starts, t_ends]
    floats += [t for s in scales for t in (s.centres, s.index.aabb, s.lines)]
    ops = ops_for(floats)
    if (
        ops is None
        or not xyz.is_cpu
        or ray_indices.dtype != torch.long
        or not 1 <= k <= MAX_NATIVE_K
    ):
        return local_cp_density_transmittance_torch(
            xyz, scales, k, t_starts, t_ends, ray_indices, n_rays, shift, scale, eps
        )
    out = ops.local_cp_density_transmittance(
        xyz,
        [s.centres for s in scales],
        [float(s.half_extent) for s in scales],
        [s.index.aabb for s in scales],
        [size for s in scales for size in s.index.resolution],
        [s.index.cell_slot.to(xyz.device) for s in scales],
        [s.index.table.to(xyz.device) for s in scales],
        [s.lines.detach() for s in scales],
        int(k),
        IDW_EPS,
        t_starts,
        t_ends,
        ray_indices,
        int(n_rays),
        float(shift),
        float(scale),
        float(eps),
    )
    n = len(scales)
    return out[0], out[1], list(out[2 : 2 + n]), list(out[2 + n :])


@torch.no_grad()
def local_cp_density_transmittance_torch(
    xyz: Float[Tensor, "s 3"],
    scales: Sequence[LocalScale],
    k: int,
    t_starts: Float[Tensor, " s"],
    t_ends: Float[Tensor, " s"],
    ray_indices: Int[Tensor, " s"],
    n_rays: int,
    shift: float,
    scale: float,
    eps: float,
) -> PassWithCubes:
    """PyTorch twin of :func:`local_cp_density_transmittance` (same signature, same result):
    every sample looked up, then composited."""
    value = xyz.new_zeros(xyz.shape[0])
    covered = torch.ones(xyz.shape[0], dtype=torch.bool, device=xyz.device)
    ids, weights = [], []
    for s in scales:
        found, w = covering_tensors_torch(xyz, s.centres, s.half_extent, s.index, k)
        value = value + local_cp_mix_torch(xyz, found, w, s.centres, s.half_extent, s.lines).sum(1)
        covered &= found[:, 0] >= 0
        ids.append(found)
        weights.append(w)
    value = value.masked_fill(~covered, float("-inf"))
    sigmas = F.softplus(value + shift) * scale
    _, transmittance = render_transmittance_torch(
        sigmas, t_starts, t_ends, ray_indices, n_rays, eps
    )
    if eps > 0:
        kept = transmittance >= eps
        value = torch.where(kept, value, torch.zeros_like(value))
        ids = [torch.where(kept[:, None], i, torch.full_like(i, -1)) for i in ids]
        weights = [torch.where(kept[:, None], w, torch.zeros_like(w)) for w in weights]
    return value, transmittance, ids, weights
