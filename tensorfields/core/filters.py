"""Small image filters shared by the training losses and the evaluation metrics."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def gaussian_filter_1d(size: int = 11, sigma: float = 1.5) -> Float[Tensor, " taps"]:
    """Normalised 1D Gaussian taps, centred the way mip-NeRF/TensoRF centre them."""
    half = size // 2
    shift = (2 * half - size + 1) / 2
    x = (torch.arange(size, dtype=torch.float64) - half + shift) / sigma
    taps = torch.exp(-0.5 * x**2)
    return taps / taps.sum()
