"""Tile binning: which Gaussians touch which 16x16 tile, sorted front to back per tile.

The same rule as gsplat's ``isect_tiles``: a Gaussian covers the tiles its radius rectangle
overlaps; within a tile, Gaussians are ordered by camera depth (ties by index, a stable sort).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tensorfields.core._torch_impl import ALPHA_MIN


class TileBins(NamedTuple):
    """``gaussian_ids[offsets[t] : offsets[t + 1]]`` are tile ``t``'s Gaussians, front first;
    tiles are numbered row-major over a ``tiles_y x tiles_x`` grid."""

    gaussian_ids: Int[Tensor, " isects"]
    offsets: Int[Tensor, " tiles_plus_1"]
    tiles_x: int
    tiles_y: int
    tile_size: int


def tile_rects(
    means2d: Float[Tensor, "n 2"],
    radii: Int[Tensor, "n 2"],
    tile_size: int,
    tiles_x: int,
    tiles_y: int,
) -> tuple[Int[Tensor, "n 2"], Int[Tensor, "n 2"]]:
    """Per Gaussian, the first and one-past-last tile ``(x, y)`` its footprint overlaps (an
    empty rectangle for culled Gaussians)."""
    centre, extent = means2d.detach() / tile_size, radii.to(means2d.dtype) / tile_size
    limit = torch.tensor([tiles_x, tiles_y], device=means2d.device)
    low = torch.floor(centre - extent).long().clamp(min=0).minimum(limit)
    high = torch.ceil(centre + extent).long().clamp(min=0).minimum(limit)
    culled = (radii <= 0).any(dim=-1, keepdim=True)
    return low, torch.where(culled, low, high)


@torch.no_grad()
def visible_radii(
    conics: Float[Tensor, "n 3"], opacities: Float[Tensor, " n"], radii: Int[Tensor, "n 2"]
) -> Int[Tensor, "n 2"]:
    """Radii that bound where a Gaussian's alpha can reach 1/255: never larger than ``radii``.

    ``o exp(-s) >= 1/255`` needs ``s <= ln(255 o)``, an ellipse whose bounding box has
    half-widths ``sqrt(2 ln(255 o) cov_xx)`` and ``sqrt(2 ln(255 o) cov_yy)``. A tile outside
    it gets nothing from the Gaussian, so binning with these radii renders exactly the same
    image and gradients with fewer pairs (faint Gaussians cover far less than 3.33 sigma).
    """
    a, b, c = conics.unbind(-1)
    inverse_det = (a * c - b * b).clamp(min=1e-20)
    cov = torch.stack([c, a], dim=-1) / inverse_det[:, None]  # cov_xx, cov_yy
    # Margins (as in the compositor) keep the bound conservative under float rounding.
    level = torch.log(opacities.clamp(min=1e-20) / ALPHA_MIN) + 1e-3
    extent = torch.sqrt(2 * level.clamp(min=0)[:, None] * cov) * 1.001 + 0.01
    tight = torch.where(level[:, None] > 0, torch.ceil(extent), 0).to(radii.dtype)
    return torch.minimum(radii, tight)


@torch.no_grad()
def bin_gaussians(
    means2d: Float[Tensor, "n 2"],
    radii: Int[Tensor, "n 2"],
    depths: Float[Tensor, " n"],
    width: int,
    height: int,
    tile_size: int = 16,
) -> TileBins:
    """Bin one camera's projected Gaussians into tiles, each tile's list sorted by depth."""
    tiles_x, tiles_y = -(-width // tile_size), -(-height // tile_size)
    low, high = tile_rects(means2d, radii, tile_size, tiles_x, tiles_y)
    span = high - low
    count = span[:, 0] * span[:, 1]
    ids = torch.repeat_interleave(torch.arange(count.numel(), device=count.device), count)
    # Position of each intersection inside its Gaussian's rectangle, then its tile.
    first = torch.cumsum(count, 0) - count
    local = torch.arange(ids.numel(), device=ids.device) - first[ids]
    tx = low[ids, 0] + local % span[ids, 0].clamp(min=1)
    ty = low[ids, 1] + local // span[ids, 0].clamp(min=1)
    tile = ty * tiles_x + tx
    # Depth order first, then a stable sort by tile keeps it within each tile.
    by_depth = torch.sort(depths.detach()[ids], stable=True).indices
    ids, tile = ids[by_depth], tile[by_depth]
    by_tile = torch.sort(tile, stable=True).indices
    ids, tile = ids[by_tile], tile[by_tile]
    per_tile = torch.bincount(tile, minlength=tiles_x * tiles_y)
    offsets = torch.zeros(tiles_x * tiles_y + 1, dtype=torch.long, device=ids.device)
    offsets[1:] = torch.cumsum(per_tile, 0)
    return TileBins(ids, offsets, tiles_x, tiles_y, tile_size)
