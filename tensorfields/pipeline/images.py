"""Images people look at: depth colouring and ground truth | render | depth strips."""

from __future__ import annotations

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

# Anchor colours of the viridis colormap (dark = near, bright = far).
_VIRIDIS = (
    torch.tensor(
        [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]],
        dtype=torch.float32,
    )
    / 255.0
)


def colorize_depth(
    depth: Float[Tensor, "h w"],
    accumulation: Float[Tensor, "h w"],
    near: float,
    far: float,
    background: Float[Tensor, "3"] | None = None,
) -> Float[Tensor, "h w 3"]:
    """Depth mapped to viridis between ``near`` and ``far``; empty pixels show ``background``."""
    x = ((depth - near) / max(far - near, 1e-6)).clamp(0, 1) * (len(_VIRIDIS) - 1)
    lo = x.floor().long().clamp(max=len(_VIRIDIS) - 2)
    frac = (x - lo)[..., None]
    colors = _VIRIDIS.to(depth.device)
    rgb = colors[lo] * (1 - frac) + colors[lo + 1] * frac
    bg = torch.ones(3, device=depth.device) if background is None else background.to(depth.device)
    alpha = accumulation.clamp(0, 1)[..., None]
    return rgb * alpha + bg * (1 - alpha)


def to_uint8(image: Float[Tensor, "h w 3"]) -> np.ndarray:
    return (image.detach().clamp(0, 1).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def write_side_by_side(path: Path, panels: list[Float[Tensor, "h w 3"]]) -> None:
    """Write the panels left to right into one PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, np.concatenate([to_uint8(p) for p in panels], axis=1))
