"""Occupancy bitfields: one bit per grid cell, eight cells a byte (what the native ops read).

Cell ``(i, j, k)`` of an ``(X, Y, Z)`` grid has flat index ``(i * Y + j) * Z + k`` and lives in
bit ``flat & 7`` of byte ``flat >> 3``: 2 MB for a 256^3 grid, which stays in cache while rays
are marched (the bool grid would take 16 MB).
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Int, UInt8
from torch import Tensor

_SHIFTS = (0, 1, 2, 3, 4, 5, 6, 7)


def pack_bits(grid: Bool[Tensor, "x y z"]) -> UInt8[Tensor, " b"]:
    """The bitfield of a bool grid (the last byte is zero-padded)."""
    flat = grid.reshape(-1).to(torch.uint8)
    pad = (-flat.numel()) % 8
    if pad:
        flat = torch.cat([flat, flat.new_zeros(pad)])
    shifts = torch.tensor(_SHIFTS, dtype=torch.uint8, device=grid.device)
    return (flat.view(-1, 8) << shifts).sum(dim=1, dtype=torch.uint8)


def unpack_bits(
    bits: UInt8[Tensor, " b"], resolution: tuple[int, int, int]
) -> Bool[Tensor, "x y z"]:
    """The bool grid of a bitfield."""
    cells = resolution[0] * resolution[1] * resolution[2]
    if bits.numel() != (cells + 7) // 8:
        raise ValueError(f"a {resolution} grid needs {(cells + 7) // 8} bytes, got {bits.numel()}")
    shifts = torch.tensor(_SHIFTS, dtype=torch.uint8, device=bits.device)
    flat = ((bits[:, None] >> shifts) & 1).reshape(-1)[:cells]
    return flat.bool().view(resolution)


def read_bits(bits: UInt8[Tensor, " b"], flat: Int[Tensor, " n"]) -> Bool[Tensor, " n"]:
    """Whether the cells with these flat indices are set."""
    return ((bits[flat >> 3] >> (flat & 7).to(torch.uint8)) & 1).bool()
