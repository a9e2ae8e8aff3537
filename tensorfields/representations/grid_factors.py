"""Sampling, resizing and cropping of the 1D/2D factor grids that VM and CP are built from.

Factors are stored as ``(1, C, H, W)`` images (a line is ``(1, C, L, 1)``) and sampled with
``grid_sample(align_corners=True)``: coordinate -1 is the first grid node, +1 the last.
"""

from __future__ import annotations

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
    return out.view(plane.shape[1], -1).t()


def sample_line(line: Float[Tensor, "1 c l 1"], w: Float[Tensor, " n"]) -> Float[Tensor, "n c"]:
    """Linear lookup along a line stored as a one-pixel-wide image."""
    grid = torch.stack([torch.zeros_like(w), w], dim=-1)
    return sample_plane(line, grid)


def resize_factor(factor: Tensor, size: tuple[int, ...]) -> Tensor:
    """Resample a factor grid to ``size`` (the represented function is kept, align_corners)."""
    return F.interpolate(factor.data, size=size, mode="bilinear", align_corners=True)
