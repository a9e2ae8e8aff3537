"""Sampling, resizing and cropping of the 1D/2D factor grids that VM and CP are built from.

Factors are stored as ``(1, C, H, W)`` images (a line is ``(1, C, L, 1)``) and sampled with
``grid_sample(align_corners=True)``: coordinate -1 is the first grid node, +1 the last. The
sampling maths lives in the core layer (``tensorfields.core._torch_impl``, the reference of the
fused native lookups in ``tensorfields.core.interp``); it is re-exported here.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from tensorfields.core._torch_impl import LINE_AXES, PLANE_AXES, sample_line, sample_plane

__all__ = ["LINE_AXES", "PLANE_AXES", "resize_factor", "sample_line", "sample_plane"]


def resize_factor(factor: Tensor, size: tuple[int, ...]) -> Tensor:
    """Resample a factor grid to ``size`` (the represented function is kept, align_corners)."""
    return F.interpolate(factor.data, size=size, mode="bilinear", align_corners=True)
