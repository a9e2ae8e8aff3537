"""Visual-hull carving: cells that some camera sees as background hold no matter."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float
from torch import Tensor

from tensorfields.core.occupancy import cell_centers
from tensorfields.data.dataset import SceneSplit


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


def carve_split(
    split: SceneSplit, aabb: Float[Tensor, "6"], resolution: tuple[int, int, int]
) -> Bool[Tensor, "x y z"] | None:
    """The visual hull of a split's alpha masks over ``aabb`` (None when it has no masks)."""
    if split.alphas is None:
        return None
    cams = split.cameras
    intrinsics = torch.stack([cams.fx, cams.fy, cams.cx, cams.cy], dim=-1)
    return carve_visual_hull(cams.c2w, intrinsics, split.alphas > 1e-3, aabb, resolution)


def covered_pixels(
    c2w: Float[Tensor, "n 4 4"],
    intrinsics: Float[Tensor, "n 4"],
    grid: Bool[Tensor, "x y z"],
    aabb: Float[Tensor, "6"],
    height: int,
    width: int,
) -> Bool[Tensor, "n h w"]:
    """Pixels whose rays may pass through an occupied cell: occupied cells splatted into each view.

    Each cell centre marks its pixel, grown by the cell's largest on-screen half-diagonal, so
    the result is conservative: a pixel whose ray crosses an occupied cell is always covered.
    """
    resolution = tuple(grid.shape)
    centers = cell_centers(aabb, resolution)[grid]
    cell = (aabb[3:] - aabb[:3]) / torch.tensor(resolution, dtype=aabb.dtype, device=aabb.device)
    half_diagonal = 0.5 * float(cell.norm())
    out = torch.zeros(c2w.shape[0], height, width, dtype=torch.bool, device=c2w.device)
    if centers.shape[0] == 0:
        return out
    for i in range(c2w.shape[0]):
        fx, fy, cx, cy = intrinsics[i].tolist()
        local = (centers - c2w[i, :3, 3]) @ c2w[i, :3, :3]
        z = local[:, 2]
        front = z > 1e-6
        if not front.any():
            continue
        radius = math.ceil(max(fx, fy) * half_diagonal / float(z[front].min())) + 1
        # Splat on a canvas padded by the radius: cells just off-screen still reach the border.
        u = (fx * local[front, 0] / z[front] + cx + radius).floor().long()
        v = (fy * local[front, 1] / z[front] + cy + radius).floor().long()
        pad_h, pad_w = height + 2 * radius, width + 2 * radius
        inside = (u >= 0) & (u < pad_w) & (v >= 0) & (v < pad_h)
        hits = torch.zeros(pad_h, pad_w, dtype=torch.float32, device=c2w.device)
        hits[v[inside], u[inside]] = 1.0
        grown = F.max_pool2d(hits[None, None], 2 * radius + 1, stride=1, padding=radius)
        out[i] = grown[0, 0, radius : radius + height, radius : radius + width] > 0
    return out
