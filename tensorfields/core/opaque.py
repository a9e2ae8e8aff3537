"""The no-grad density pass of a training render: where along each ray it turns opaque.

A training render composites only the samples in front of the point where each ray's
transmittance falls below a threshold; the others cannot change the image. This pass finds
that point (and hands the kept samples' density features to the differentiable pass).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tensorfields.core._torch_impl import vm_density_transmittance_torch
from tensorfields.core.interp import _channels_last
from tensorfields.core.native import ops_for

__all__ = ["has_fused_density_pass", "vm_density_transmittance"]


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
