"""Where Strivec's local tensors go: one per occupied voxel of the coarse points, per scale."""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor


def voxel_means(points: Float[Tensor, "p 3"], voxel_size: float) -> Float[Tensor, "n 3"]:
    """Voxelize ``points`` at ``voxel_size`` (cells from the points' minimum corner) and return
    the mean point of each occupied voxel, ordered by voxel index."""
    if voxel_size <= 0:
        raise ValueError(f"voxel_size must be > 0, got {voxel_size}")
    if points.shape[0] == 0:
        return points.new_zeros(0, 3)
    ijk = torch.floor((points - points.amin(0)) / voxel_size).long()
    span = ijk.amax(0) + 1
    key = (ijk[:, 0] * span[1] + ijk[:, 1]) * span[2] + ijk[:, 2]
    _, cell = torch.unique(key, return_inverse=True)  # 1-D: much faster than unique(dim=0)
    count = torch.bincount(cell).to(points.dtype)
    sums = torch.zeros(count.numel(), 3, dtype=points.dtype, device=points.device)
    sums.index_add_(0, cell, points)
    return sums / count[:, None]


def farthest_point_sampling(points: Float[Tensor, "n 3"], count: int) -> Int[Tensor, " k"]:
    """Indices of ``count`` points spread out greedily (start: point 0); all when fewer."""
    n = points.shape[0]
    if count >= n:
        return torch.arange(n, device=points.device)
    chosen = torch.zeros(count, dtype=torch.long, device=points.device)
    nearest = torch.full((n,), float("inf"), dtype=points.dtype, device=points.device)
    for i in range(1, count):
        nearest = torch.minimum(nearest, (points - points[chosen[i - 1]]).square().sum(1))
        chosen[i] = torch.argmax(nearest)
    return chosen


def place_tensors(
    points: Float[Tensor, "p 3"], voxel_size: float, max_count: int | None = None
) -> Float[Tensor, "n 3"]:
    """Tensor centres of one scale: voxel means of ``points``, thinned by farthest-point
    sampling to ``max_count`` when given."""
    centres = voxel_means(points, voxel_size)
    if max_count is not None and centres.shape[0] > max_count:
        centres = centres[farthest_point_sampling(centres, max_count)]
    return centres
