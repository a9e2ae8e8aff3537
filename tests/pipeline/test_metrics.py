"""PSNR/SSIM against closed forms and an independent numpy port of TensoRF's rgb_ssim."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tensorfields.pipeline.metrics import psnr, ssim


def reference_rgb_ssim(img0, img1, max_val=1.0, size=11, sigma=1.5, k1=0.01, k2=0.03):
    """TensoRF's rgb_ssim with scipy.signal.convolve2d(mode='valid') replaced by numpy slicing."""
    hw = size // 2
    shift = (2 * hw - size + 1) / 2
    filt = np.exp(-0.5 * ((np.arange(size) - hw + shift) / sigma) ** 2)
    filt /= filt.sum()

    def convolve_valid(z, axis):  # true convolution: the kernel is flipped
        n = z.shape[axis] - size + 1
        kernel = filt[::-1]
        return sum(kernel[k] * np.take(z, np.arange(k, k + n), axis=axis) for k in range(size))

    def filt_fn(z):
        return convolve_valid(convolve_valid(z, 0), 1)

    mu0, mu1 = filt_fn(img0), filt_fn(img1)
    mu00, mu11, mu01 = mu0 * mu0, mu1 * mu1, mu0 * mu1
    sigma00 = np.maximum(0.0, filt_fn(img0**2) - mu00)
    sigma11 = np.maximum(0.0, filt_fn(img1**2) - mu11)
    sigma01 = filt_fn(img0 * img1) - mu01
    sigma01 = np.sign(sigma01) * np.minimum(np.sqrt(sigma00 * sigma11), np.abs(sigma01))
    c1, c2 = (k1 * max_val) ** 2, (k2 * max_val) ** 2
    numer = (2 * mu01 + c1) * (2 * sigma01 + c2)
    denom = (mu00 + mu11 + c1) * (sigma00 + sigma11 + c2)
    return float(np.mean(numer / denom))


def random_pair(h=37, w=29, seed=0):
    gen = torch.Generator().manual_seed(seed)
    gt = torch.rand(h, w, 3, generator=gen)
    noise = 0.15 * torch.randn(h, w, 3, generator=gen)
    return (gt + noise).clamp(0, 1), gt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ssim_matches_reference(seed):
    pred, gt = random_pair(seed=seed)
    expected = reference_rgb_ssim(pred.double().numpy(), gt.double().numpy())
    assert ssim(pred, gt) == pytest.approx(expected, abs=1e-10)
    assert 0.0 < ssim(pred, gt) < 1.0


def test_ssim_reference_on_smooth_image():
    y, x = torch.meshgrid(torch.linspace(0, 1, 24), torch.linspace(0, 1, 20), indexing="ij")
    gt = torch.stack([x, y, x * y], dim=-1)
    pred = (gt + 0.05 * torch.sin(20 * x)[..., None]).clamp(0, 1)
    expected = reference_rgb_ssim(pred.double().numpy(), gt.double().numpy())
    assert ssim(pred, gt) == pytest.approx(expected, abs=1e-10)


def test_ssim_closed_forms():
    pred, _ = random_pair()
    assert ssim(pred, pred) == pytest.approx(1.0, abs=1e-12)
    # Two flat images: variances vanish, leaving the luminance term (2ab + c1) / (a^2 + b^2 + c1).
    a, b, c1 = 0.2, 0.7, 0.01**2
    flat_a, flat_b = torch.full((16, 16, 3), a), torch.full((16, 16, 3), b)
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert ssim(flat_a, flat_b) == pytest.approx(expected, rel=1e-6)


def test_psnr_closed_forms():
    gt = torch.rand(8, 9, 3) * 0.8
    assert psnr(gt + 0.1, gt) == pytest.approx(20.0, abs=1e-6)  # mse = 0.01
    assert psnr(gt + 0.01, gt) == pytest.approx(40.0, abs=1e-4)
    assert psnr(gt, gt) == math.inf


def test_shape_errors():
    with pytest.raises(ValueError, match="same shape"):
        psnr(torch.zeros(4, 4, 3), torch.zeros(4, 5, 3))
    with pytest.raises(ValueError, match="same shape"):
        ssim(torch.zeros(16, 16, 4), torch.zeros(16, 16, 4))
    with pytest.raises(ValueError, match="smaller than"):
        ssim(torch.zeros(8, 16, 3), torch.zeros(8, 16, 3))
