"""Occupancy grids: which cells of a box may hold matter (so samples elsewhere are skipped)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor


def cell_indices(
    xyz: Float[Tensor, "n 3"], aabb: Float[Tensor, "6"], resolution: tuple[int, int, int]
) -> tuple[Tensor, Bool[Tensor, " n"]]:
    """Flat index of the grid cell holding each point, and whether the point is inside the box."""
    res = torch.tensor(resolution, device=xyz.device)
    rel = (xyz - aabb[:3]) / (aabb[3:] - aabb[:3])
    inside = ((rel >= 0) & (rel <= 1)).all(dim=-1)
    ijk = (rel * res).long().clamp(min=0)
    ijk = torch.minimum(ijk, res - 1)
    flat = (ijk[:, 0] * resolution[1] + ijk[:, 1]) * resolution[2] + ijk[:, 2]
    return flat, inside


def query_occupancy(
    xyz: Float[Tensor, "n 3"], grid: Bool[Tensor, "x y z"], aabb: Float[Tensor, "6"]
) -> Bool[Tensor, " n"]:
    """True where a point lies inside ``aabb`` in an occupied cell of ``grid`` (indexed x, y, z)."""
    flat, inside = cell_indices(xyz, aabb, tuple(grid.shape))
    return grid.reshape(-1)[flat] & inside


def cell_centers(
    aabb: Float[Tensor, "6"], resolution: tuple[int, int, int]
) -> Float[Tensor, "x y z 3"]:
    """World coordinates of the centres of a grid's cells over ``aabb``."""
    axes = [
        aabb[i]
        + (torch.arange(r, device=aabb.device, dtype=aabb.dtype) + 0.5)
        * (aabb[i + 3] - aabb[i])
        / r
        for i, r in enumerate(resolution)
    ]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def dilate(grid: Bool[Tensor, "x y z"], kernel: int = 3) -> Bool[Tensor, "x y z"]:
    """Max-pool dilation (TensoRF dilates its alpha mask with a 3x3x3 max-pool)."""
    pooled = F.max_pool3d(grid[None, None].float(), kernel, stride=1, padding=kernel // 2)
    return pooled[0, 0] > 0


def occupied_bounds(grid: Bool[Tensor, "x y z"], aabb: Float[Tensor, "6"]) -> Float[Tensor, "6"]:
    """The smallest box (aligned to cells) holding every occupied cell; ``aabb`` if none is."""
    occupied = grid.nonzero()
    if occupied.numel() == 0:
        return aabb.clone()
    res = torch.tensor(grid.shape, device=aabb.device, dtype=aabb.dtype)
    cell = (aabb[3:] - aabb[:3]) / res
    lo = aabb[:3] + occupied.amin(dim=0).to(aabb.dtype) * cell
    hi = aabb[:3] + (occupied.amax(dim=0).to(aabb.dtype) + 1) * cell
    return torch.cat([lo, hi])
