"""Pure-PyTorch reference of the factor lookups: the oracle the native ops are tested against.

Factors are stored as ``(1, C, H, W)`` images (a line is ``(1, C, L, 1)``) and sampled with
``grid_sample(align_corners=True, padding_mode="zeros")``: coordinate -1 is the first grid
node, +1 the last, and nodes outside the grid read as zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

# Plane i spans axes PLANE_AXES[i]; line i runs along LINE_AXES[i] (the axis the plane misses).
PLANE_AXES = ((0, 1), (0, 2), (1, 2))
LINE_AXES = (2, 1, 0)


def sample_plane(plane: Float[Tensor, "1 c h w"], uv: Float[Tensor, "n 2"]) -> Float[Tensor, "n c"]:
    """Bilinear lookup: ``uv[:, 0]`` indexes the width axis, ``uv[:, 1]`` the height axis."""
    out = F.grid_sample(plane, uv.view(1, -1, 1, 2), mode="bilinear", align_corners=True)
    # Explicit n (not -1): a view of zero elements cannot infer it.
    return out.view(plane.shape[1], uv.shape[0]).t()


def sample_line(line: Float[Tensor, "1 c l 1"], w: Float[Tensor, " n"]) -> Float[Tensor, "n c"]:
    """Linear lookup along a line stored as a one-pixel-wide image."""
    grid = torch.stack([torch.zeros_like(w), w], dim=-1)
    return sample_plane(line, grid)


def vm_interp_torch(
    xyz: Float[Tensor, "n 3"],
    planes: Sequence[Float[Tensor, "1 c h w"]],
    lines: Sequence[Float[Tensor, "1 c l 1"]],
) -> Float[Tensor, "n 3 c"]:
    """Plane i at ``xyz[:, PLANE_AXES[i]]`` times line i at ``xyz[:, LINE_AXES[i]]``."""
    out = []
    for plane, line, (a, b), c in zip(planes, lines, PLANE_AXES, LINE_AXES, strict=True):
        out.append(sample_plane(plane, xyz[:, [a, b]]) * sample_line(line, xyz[:, c]))
    return torch.stack(out, dim=1)


def cp_interp_torch(
    xyz: Float[Tensor, "n 3"], lines: Sequence[Float[Tensor, "1 c l 1"]]
) -> Float[Tensor, "n c"]:
    """Product of the three line lookups, line ``i`` at ``xyz[:, i]``."""
    out = sample_line(lines[0], xyz[:, 0])
    for axis in (1, 2):
        out = out * sample_line(lines[axis], xyz[:, axis])
    return out
