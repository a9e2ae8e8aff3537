"""Ray / box intersection."""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor

from tensorfields.core._torch_impl import ray_aabb_intersect_torch
from tensorfields.core.native import ops_for


def ray_aabb_intersect(
    origins: Float[Tensor, "n 3"],
    directions: Float[Tensor, "n 3"],
    aabb: Float[Tensor, "6"],
    near: float = 0.0,
    far: float = float("inf"),
) -> tuple[Float[Tensor, " n"], Float[Tensor, " n"]]:
    """Entry and exit distances of each ray through ``aabb`` (xmin, ymin, zmin, xmax, ymax, zmax).

    Both are clamped to ``[near, far]``. A ray that misses the box (or hits it only outside
    ``[near, far]``) gets ``t_max <= t_min``. Native where built (no gradients there: inputs
    that require grad run the reference).
    """
    tensors = [origins, directions, aabb]
    ops = ops_for(tensors, no_grad=tensors)
    if ops is None:
        return ray_aabb_intersect_torch(origins, directions, aabb, near, far)
    t_min, t_max = ops.ray_aabb_intersect(origins, directions, aabb, float(near), float(far))
    return t_min, t_max
