"""Ray / axis-aligned box intersection."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def ray_aabb_intersect(
    origins: Float[Tensor, "n 3"],
    directions: Float[Tensor, "n 3"],
    aabb: Float[Tensor, "6"],
    near: float = 0.0,
    far: float = float("inf"),
) -> tuple[Float[Tensor, " n"], Float[Tensor, " n"]]:
    """Entry and exit distances of each ray through ``aabb`` (xmin, ymin, zmin, xmax, ymax, zmax).

    Both are clamped to ``[near, far]``. A ray that misses the box (or hits it only outside
    ``[near, far]``) gets ``t_max <= t_min``.
    """
    # Axis-parallel rays: a tiny direction keeps the slab test finite and gives the right answer.
    safe = torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t_lo = (aabb[:3] - origins) / safe
    t_hi = (aabb[3:] - origins) / safe
    t_min = torch.minimum(t_lo, t_hi).amax(dim=-1).clamp(min=near, max=far)
    t_max = torch.maximum(t_lo, t_hi).amin(dim=-1).clamp(min=near, max=far)
    return t_min, t_max
