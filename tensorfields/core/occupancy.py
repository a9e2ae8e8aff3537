"""Occupancy grids: which cells of a box may hold matter (so samples elsewhere are skipped)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Bool, Float, UInt8
from torch import Tensor

from tensorfields.core._torch_impl import cell_indices, dilate, occupancy_bits_torch
from tensorfields.core.bitfield import pack_bits, unpack_bits
from tensorfields.core.native import ops_for

__all__ = [
    "OccupancyGrid",
    "cell_centers",
    "cell_indices",
    "dilate",
    "occupancy_bits",
    "occupied_bounds",
    "query_occupancy",
]


@dataclass(frozen=True)
class OccupancyGrid:
    """A bitfield occupancy grid over a box: what :func:`march_rays` skips empty space with.

    ``bits`` packs the cells as described in :mod:`tensorfields.core.bitfield`.
    """

    bits: UInt8[Tensor, " b"]
    resolution: tuple[int, int, int]
    aabb: Float[Tensor, "6"]

    def __post_init__(self) -> None:
        cells = self.resolution[0] * self.resolution[1] * self.resolution[2]
        if self.bits.dtype != torch.uint8 or self.bits.numel() != (cells + 7) // 8:
            raise ValueError(
                f"an occupancy grid of {self.resolution} cells needs {(cells + 7) // 8} uint8 "
                f"bytes, got {self.bits.numel()} {self.bits.dtype}"
            )

    @classmethod
    def from_dense(cls, grid: Bool[Tensor, "x y z"], aabb: Float[Tensor, "6"]) -> OccupancyGrid:
        return cls(pack_bits(grid), tuple(grid.shape), aabb)

    def dense(self) -> Bool[Tensor, "x y z"]:
        return unpack_bits(self.bits, self.resolution)


def occupancy_bits(
    alpha: Float[Tensor, "x y z"], threshold: float, kernel: int = 3
) -> UInt8[Tensor, " b"]:
    """Cells whose ``alpha`` exceeds ``threshold``, dilated by a ``kernel``^3 max-pool (as
    TensoRF dilates its alpha mask), packed into a bitfield. ``kernel`` must be odd."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be odd and >= 1, got {kernel}")
    if alpha.dim() != 3:
        raise ValueError(f"alpha must be (X, Y, Z), got shape {tuple(alpha.shape)}")
    with torch.no_grad():
        ops = ops_for([alpha])
        if ops is None:
            return occupancy_bits_torch(alpha, threshold, kernel)
        return ops.occupancy_bits(alpha, float(threshold), int(kernel))


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
