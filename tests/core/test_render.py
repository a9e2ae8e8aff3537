"""Compositing packed samples, checked against closed forms and a per-ray reference loop."""

from __future__ import annotations

import math

import pytest
import torch

from tensorfields.core.render import accumulate_along_rays, composite, render_transmittance

pytestmark = pytest.mark.usefixtures("backend")


def _pack(per_ray: list[int], dtype=torch.float64, seed: int = 0):
    """Packed samples for rays with the given sample counts: random sigmas and interval lengths."""
    gen = torch.Generator().manual_seed(seed)
    ray_idx = torch.repeat_interleave(torch.arange(len(per_ray)), torch.tensor(per_ray))
    n = ray_idx.numel()
    deltas = 0.05 + 0.3 * torch.rand(n, generator=gen, dtype=dtype)
    t_starts = torch.empty(n, dtype=dtype)
    offset = 0
    for count in per_ray:
        d = deltas[offset : offset + count]
        t_starts[offset : offset + count] = 2.0 + torch.cumsum(d, 0) - d
        offset += count
    sigmas = 3.0 * torch.rand(n, generator=gen, dtype=dtype)
    rgbs = torch.rand(n, 3, generator=gen, dtype=dtype)
    return sigmas, t_starts, t_starts + deltas, ray_idx, rgbs


def _reference(sigmas, t_starts, t_ends, ray_idx, rgbs, n_rays, background):
    """Dense per-ray loop of the textbook formulas."""
    weights = torch.zeros_like(sigmas)
    trans = torch.zeros_like(sigmas)
    rgb = torch.zeros(n_rays, 3, dtype=sigmas.dtype)
    acc = torch.zeros(n_rays, dtype=sigmas.dtype)
    depth = torch.zeros(n_rays, dtype=sigmas.dtype)
    for r in range(n_rays):
        t = 1.0
        for i in (ray_idx == r).nonzero()[:, 0].tolist():
            alpha = 1.0 - math.exp(-float(sigmas[i]) * float(t_ends[i] - t_starts[i]))
            trans[i] = t
            weights[i] = t * alpha
            t *= 1.0 - alpha
            rgb[r] += weights[i] * rgbs[i]
            acc[r] += weights[i]
            depth[r] += weights[i] * 0.5 * (t_starts[i] + t_ends[i])
        if acc[r] > 0:
            depth[r] /= acc[r]
        rgb[r] += (1.0 - acc[r]) * background
    return weights, trans, rgb, acc, depth


def test_packed_matches_dense_reference() -> None:
    per_ray = [4, 0, 7, 1, 0, 12]
    sigmas, t0, t1, ray_idx, rgbs = _pack(per_ray)
    n = len(per_ray)
    background = torch.tensor([0.2, 0.5, 1.0], dtype=torch.float64)
    weights, trans = render_transmittance(sigmas, t0, t1, ray_idx, n)
    rgb, acc, depth = composite(weights, rgbs, t0, t1, ray_idx, n, background)
    ref = _reference(sigmas, t0, t1, ray_idx, rgbs, n, background)
    for got, want in zip((weights, trans, rgb, acc, depth), ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_float32_packed_matches_reference() -> None:
    per_ray = [50, 3, 0, 200]
    sigmas, t0, t1, ray_idx, rgbs = _pack(per_ray, seed=3)
    weights, trans = render_transmittance(sigmas.float(), t0.float(), t1.float(), ray_idx, 4)
    ref_w, ref_t, *_ = _reference(sigmas, t0, t1, ray_idx, rgbs, 4, torch.zeros(3))
    assert weights.dtype == trans.dtype == torch.float32
    torch.testing.assert_close(weights, ref_w.float(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(trans, ref_t.float(), rtol=1e-5, atol=1e-6)


def test_opaque_slab() -> None:
    step, a, b = 0.01, 2.0, 2.5
    t0 = torch.arange(0.0, 4.0, step, dtype=torch.float64)
    t1 = t0 + step
    mid = 0.5 * (t0 + t1)
    sigmas = torch.where((mid > a) & (mid < b), 1e4, 0.0).to(torch.float64)
    slab = torch.tensor([0.2, 0.4, 0.6], dtype=torch.float64)
    rgbs = torch.where(((mid > a) & (mid < b))[:, None], slab, torch.tensor([1.0, 0.0, 0.0]))
    ray_idx = torch.zeros_like(t0, dtype=torch.long)
    weights, _ = render_transmittance(sigmas, t0, t1, ray_idx, 1)
    rgb, acc, depth = composite(weights, rgbs, t0, t1, ray_idx, 1, torch.ones(3, dtype=t0.dtype))
    assert acc.item() == pytest.approx(1.0, abs=1e-9)
    assert abs(depth.item() - a) <= step
    torch.testing.assert_close(rgb[0], slab)


@pytest.mark.parametrize("n_steps", [1, 7, 100])
def test_constant_medium_is_exact(n_steps: int) -> None:
    sigma, start, length = 1.3, 2.0, 0.8
    edges = torch.linspace(start, start + length, n_steps + 1, dtype=torch.float64)
    t0, t1 = edges[:-1], edges[1:]
    ray_idx = torch.zeros(n_steps, dtype=torch.long)
    weights, trans = render_transmittance(torch.full_like(t0, sigma), t0, t1, ray_idx, 1)
    acc = accumulate_along_rays(weights, ray_idx, None, 1)[:, 0]
    assert acc.item() == pytest.approx(1.0 - math.exp(-sigma * length), rel=1e-12)
    torch.testing.assert_close(trans, torch.exp(-sigma * (t0 - start)))


def test_empty_rays_show_background() -> None:
    background = torch.tensor([0.1, 0.2, 0.3])
    # Ray 1 of 3 has samples, but all with zero density; rays 0 and 2 have none at all.
    t0 = torch.tensor([2.0, 2.1])
    ray_idx = torch.tensor([1, 1])
    weights, trans = render_transmittance(torch.zeros(2), t0, t0 + 0.1, ray_idx, 3)
    rgb, acc, depth = composite(weights, torch.rand(2, 3), t0, t0 + 0.1, ray_idx, 3, background)
    torch.testing.assert_close(rgb, background.expand(3, 3))
    torch.testing.assert_close(acc, torch.zeros(3))
    torch.testing.assert_close(depth, torch.zeros(3))
    torch.testing.assert_close(trans, torch.ones(2))


def test_no_samples_at_all() -> None:
    empty = torch.zeros(0)
    idx = torch.zeros(0, dtype=torch.long)
    weights, trans = render_transmittance(empty, empty, empty, idx, 4)
    assert weights.shape == trans.shape == (0,)
    background = torch.tensor([1.0, 0.5, 0.0])
    rgb, acc, depth = composite(weights, torch.zeros(0, 3), empty, empty, idx, 4, background)
    torch.testing.assert_close(rgb, background.expand(4, 3))
    assert acc.shape == depth.shape == (4,) and (acc == 0).all() and (depth == 0).all()
    # Without a background the colour is black.
    rgb, _, _ = composite(weights, torch.zeros(0, 3), empty, empty, idx, 4)
    assert rgb.shape == (4, 3) and (rgb == 0).all()


def test_accumulate_values_per_ray() -> None:
    weights = torch.tensor([0.5, 0.25, 1.0, 2.0])
    values = torch.tensor([[1.0, 2.0], [4.0, 0.0], [1.0, 1.0], [0.5, 0.5]])
    out = accumulate_along_rays(weights, torch.tensor([0, 0, 2, 2]), values, 3)
    torch.testing.assert_close(out, torch.tensor([[1.5, 1.0], [0.0, 0.0], [2.0, 2.0]]))


def test_gradcheck_transmittance() -> None:
    per_ray = [3, 0, 5, 2]
    sigmas, t0, t1, ray_idx, _ = _pack(per_ray, seed=1)
    sigmas = sigmas.clone().requires_grad_(True)

    def fn(s):
        return render_transmittance(s, t0, t1, ray_idx, len(per_ray))

    assert torch.autograd.gradcheck(fn, (sigmas,), eps=1e-6, atol=1e-8)
