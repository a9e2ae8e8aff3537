"""The template every MIGS identity starts from: Gaussians filling cylinders around the bones.

Our "body model" is the skeleton alone (no SMPL mesh), so the template is the skeleton given
flesh: points spread over the body parts of :func:`~tensorfields.core.skinning.bone_segments`
(in proportion to their length), within ``radius`` of them. Rows are stored relative to
:func:`row_offset` (log-scale, quaternion and opacity logit of a fresh Gaussian), so the template
rows are small numbers whose low-rank fit spends its components on geometry.
"""

from __future__ import annotations

import math

import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.core.skinning import bone_segments
from tensorfields.representations.gaussian_tensor import attribute_count


def row_offset(feature_dim: int, scale: float, opacity: float) -> Float[Tensor, " m"]:
    """What is added to every stored row: log(scale), the identity quaternion, logit(opacity)."""
    offset = torch.zeros(attribute_count(feature_dim))
    offset[3:6] = math.log(scale)
    offset[6] = 1.0
    offset[-1] = math.log(opacity / (1 - opacity))
    return offset


def template_points(
    joints: Float[Tensor, "J 3"], parents: tuple[int, ...], count: int, radius: float, seed: int = 0
) -> Float[Tensor, "count 3"]:
    """``count`` points within ``radius`` of the skeleton's bones (uniform along the bones)."""
    a, b, _ = bone_segments(joints, parents)
    lengths = (b - a).norm(dim=-1) + radius  # short parts still get a share
    g = torch.Generator().manual_seed(seed)
    pick = torch.multinomial(lengths / lengths.sum(), count, replacement=True, generator=g)
    t = torch.rand(count, 1, generator=g)
    offsets = torch.randn(count, 3, generator=g)
    offsets = offsets / offsets.norm(dim=-1, keepdim=True).clamp(min=1e-9)
    offsets = offsets * radius * torch.rand(count, 1, generator=g).pow(1 / 3)
    return a[pick] + t * (b[pick] - a[pick]) + offsets


def template_rows(
    joints: Float[Tensor, "J 3"],
    parents: tuple[int, ...],
    count: int,
    radius: float,
    feature_dim: int,
    seed: int = 0,
) -> Float[Tensor, "count m"]:
    """Stored rows (relative to :func:`row_offset`) of the template: means on the skeleton's
    flesh, small random features, everything else at the offset."""
    rows = torch.zeros(count, attribute_count(feature_dim))
    rows[:, :3] = template_points(joints, parents, count, radius, seed)
    g = torch.Generator().manual_seed(seed + 1)
    rows[:, 10:-1] = 0.1 * torch.randn(count, feature_dim, generator=g)
    return rows


def spacing(count: int, total_length: float, radius: float) -> float:
    """Typical distance between template Gaussians (their initial scale)."""
    volume = math.pi * radius * radius * max(total_length, radius)
    return (volume / max(count, 1)) ** (1 / 3)
