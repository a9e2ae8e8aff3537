"""Visual-hull carving: cells that some camera sees as background hold no matter."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from tensorfields.core.occupancy import cell_centers


def carve_visual_hull(
    c2w: Float[Tensor, "n 4 4"],
    intrinsics: Float[Tensor, "n 4"],
    masks: Bool[Tensor, "n h w"],
    aabb: Float[Tensor, "6"],
    resolution: tuple[int, int, int],
) -> Bool[Tensor, "x y z"]:
    """Occupancy of ``aabb`` cells: kept only if every camera that sees them sees foreground.

    ``c2w`` is OpenCV camera-to-world; ``intrinsics`` rows are ``(fx, fy, cx, cy)``. Masks are
    dilated by the largest on-screen half-diagonal of a cell, so carving stays conservative
    (a cell partly covering the object is never removed).
    """
    centers = cell_centers(aabb, resolution).reshape(-1, 3)
    cell = (aabb[3:] - aabb[:3]) / torch.tensor(resolution, dtype=aabb.dtype, device=aabb.device)
    half_diagonal = 0.5 * float(cell.norm())
    occupied = torch.ones(centers.shape[0], dtype=torch.bool, device=centers.device)
    height, width = masks.shape[1:]
    for i in range(c2w.shape[0]):
        index = occupied.nonzero()[:, 0]
        if index.numel() == 0:
            break
        fx, fy, cx, cy = intrinsics[i].tolist()
        rot, origin = c2w[i, :3, :3], c2w[i, :3, 3]
        local = (centers[index] - origin) @ rot  # world -> camera (rows times R)
        z = local[:, 2]
        nearest = float(z[z > 0].min()) if (z > 0).any() else 1.0
        radius = math.ceil(max(fx, fy) * half_diagonal / max(nearest, 1e-6))
        mask = F.max_pool2d(masks[i][None, None].float(), 2 * radius + 1, stride=1, padding=radius)
        mask = mask[0, 0] > 0
        u = fx * local[:, 0] / z.clamp(min=1e-6) + cx
        v = fy * local[:, 1] / z.clamp(min=1e-6) + cy
        seen = (z > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        background = seen.clone()
        col, row = u[seen].long(), v[seen].long()
        background[seen] = ~mask[row, col]
        occupied[index[background]] = False
    return occupied.reshape(resolution)
