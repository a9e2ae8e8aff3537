"""Image-quality metrics computed exactly as the TensoRF paper tables were, so numbers compare.

``ssim`` reproduces TensoRF's ``rgb_ssim`` (itself mip-NeRF's): an 11-tap Gaussian (sigma 1.5)
applied separably with 'valid' borders, k1=0.01, k2=0.03, max_val=1, variances clipped to be
valid, mean over pixels and channels. It runs in torch (float64) instead of scipy so it needs no
extra dependency and works on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from tensorfields.core.filters import gaussian_filter_1d


def _check_pair(pred: Tensor, gt: Tensor) -> None:
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(
            f"expected two (h, w, 3) images of the same shape, got {tuple(pred.shape)} "
            f"and {tuple(gt.shape)}"
        )


def psnr(pred: Float[Tensor, "h w 3"], gt: Float[Tensor, "h w 3"]) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]: ``-10 * log10(mse)``."""
    _check_pair(pred, gt)
    mse = torch.mean((pred.double() - gt.double()) ** 2).item()
    return math.inf if mse == 0 else -10.0 * math.log10(mse)


def ssim(
    pred: Float[Tensor, "h w 3"],
    gt: Float[Tensor, "h w 3"],
    max_val: float = 1.0,
    filter_size: int = 11,
    filter_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> float:
    """Structural similarity, matching TensoRF's ``rgb_ssim`` (see module docstring)."""
    _check_pair(pred, gt)
    h, w, _ = pred.shape
    if h < filter_size or w < filter_size:
        raise ValueError(f"images of {h}x{w} are smaller than the {filter_size}-tap SSIM window")
    taps = gaussian_filter_1d(filter_size, filter_sigma).to(pred.device)
    col = taps.view(1, 1, filter_size, 1).expand(3, 1, filter_size, 1)
    row = taps.view(1, 1, 1, filter_size).expand(3, 1, 1, filter_size)

    def blur(z: Tensor) -> Tensor:
        # (h, w, 3) -> (1, 3, h', w'): depthwise conv, 'valid' borders. The kernel is symmetric,
        # so torch's correlation equals scipy's convolution.
        z = z.permute(2, 0, 1).unsqueeze(0)
        return F.conv2d(F.conv2d(z, col, groups=3), row, groups=3)

    x = pred.to(torch.float64)
    y = gt.to(device=pred.device, dtype=torch.float64)
    mu0, mu1 = blur(x), blur(y)
    mu00, mu11, mu01 = mu0 * mu0, mu1 * mu1, mu0 * mu1
    sigma00 = (blur(x * x) - mu00).clamp(min=0.0)
    sigma11 = (blur(y * y) - mu11).clamp(min=0.0)
    sigma01 = blur(x * y) - mu01
    sigma01 = torch.sign(sigma01) * torch.minimum(torch.sqrt(sigma00 * sigma11), sigma01.abs())
    c1 = (k1 * max_val) ** 2
    c2 = (k2 * max_val) ** 2
    numer = (2 * mu01 + c1) * (2 * sigma01 + c2)
    denom = (mu00 + mu11 + c1) * (sigma00 + sigma11 + c2)
    return (numer / denom).mean().item()
