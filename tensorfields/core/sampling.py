"""Fixed-step sampling along rays, packed (only the samples that matter are kept).

Packed samples follow nerfacc's layout: flat arrays of ``ray_indices``, ``t_starts`` and
``t_ends``, sorted by ray and, within a ray, by distance. The density of an interval is read at
its midpoint.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from tensorfields.core.occupancy import query_occupancy


def march_rays(
    origins: Float[Tensor, "n 3"],
    directions: Float[Tensor, "n 3"],
    t_min: Float[Tensor, " n"],
    t_max: Float[Tensor, " n"],
    step_size: float,
    offsets: Float[Tensor, " n"] | None = None,
    occupancy: Bool[Tensor, "x y z"] | None = None,
    occupancy_aabb: Float[Tensor, "6"] | None = None,
    max_samples: int | None = None,
) -> tuple[Int[Tensor, " s"], Float[Tensor, " s"], Float[Tensor, " s"]]:
    """March each ray from ``t_min`` to ``t_max`` in steps of ``step_size``.

    Interval ``k`` of ray ``r`` spans ``t_min + (k + offsets[r]) * step_size`` plus one step;
    ``offsets`` in [0, 1) is the per-ray random shift used in training (0 when None). Intervals
    whose midpoint falls in an empty cell of ``occupancy`` (over ``occupancy_aabb``) are dropped.
    Returns ``(ray_indices, t_starts, t_ends)``.
    """
    n = origins.shape[0]
    device = origins.device
    if offsets is None:
        offsets = torch.zeros_like(t_min)
    span = (t_max - t_min).clamp(min=0)
    counts = torch.ceil(span / step_size - offsets).clamp(min=0).long()
    if max_samples is not None:
        counts = counts.clamp(max=max_samples)
    total = int(counts.sum())
    if total == 0:
        empty = torch.empty(0, device=device, dtype=origins.dtype)
        return torch.empty(0, dtype=torch.long, device=device), empty, empty.clone()
    ray_indices = torch.repeat_interleave(torch.arange(n, device=device), counts)
    # Position of each sample within its ray: global index minus the ray's first index.
    first = torch.cumsum(counts, 0) - counts
    k = torch.arange(total, device=device) - first[ray_indices]
    t_starts = t_min[ray_indices] + (k.to(origins.dtype) + offsets[ray_indices]) * step_size
    t_ends = t_starts + step_size
    if occupancy is not None:
        mid = 0.5 * (t_starts + t_ends)
        xyz = origins[ray_indices] + directions[ray_indices] * mid[:, None]
        keep = query_occupancy(xyz, occupancy, occupancy_aabb)
        ray_indices, t_starts, t_ends = ray_indices[keep], t_starts[keep], t_ends[keep]
    return ray_indices, t_starts, t_ends


def sample_points(
    origins: Float[Tensor, "n 3"],
    directions: Float[Tensor, "n 3"],
    ray_indices: Int[Tensor, " s"],
    t_starts: Float[Tensor, " s"],
    t_ends: Float[Tensor, " s"],
) -> Float[Tensor, "s 3"]:
    """World positions of the interval midpoints."""
    mid = 0.5 * (t_starts + t_ends)
    return origins[ray_indices] + directions[ray_indices] * mid[:, None]
