"""Differentiable image losses for models trained on whole images (splats)."""

from __future__ import annotations

import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from tensorfields.core.filters import gaussian_filter_1d


def ssim_loss(
    pred: Float[Tensor, "*batch h w 3"], target: Float[Tensor, "*batch h w 3"], window: int = 11
) -> Tensor:
    """``1 - SSIM`` as 3DGS trains with it: an 11-tap Gaussian (sigma 1.5) window with zero
    'same' padding, k1 = 0.01, k2 = 0.03, mean over pixels and channels. (The evaluation
    metric in pipeline/metrics.py uses 'valid' borders, as TensoRF's tables do.)"""
    x = pred.reshape(-1, *pred.shape[-3:]).permute(0, 3, 1, 2)
    y = target.reshape(-1, *target.shape[-3:]).permute(0, 3, 1, 2)
    taps = gaussian_filter_1d(window).to(x)
    col = taps.view(1, 1, window, 1).expand(3, 1, window, 1)
    row = taps.view(1, 1, 1, window).expand(3, 1, 1, window)
    half = window // 2

    def blur(z: Tensor) -> Tensor:
        # Separable, and with zero padding per pass exactly the 2D zero-padded window.
        z = F.conv2d(z, col, padding=(half, 0), groups=3)
        return F.conv2d(z, row, padding=(0, half), groups=3)

    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )
    return 1 - ssim.mean()
