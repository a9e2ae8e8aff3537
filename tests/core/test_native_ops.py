"""Marching, compositing and occupancy: the native ops against their PyTorch twins.

Marching and occupancy use the same float arithmetic as the reference, so their outputs must be
identical; compositing sums in a different order, so it is compared with a tolerance, outputs
and gradients, and gradchecked in float64.
"""

from __future__ import annotations

import pytest
import torch

from tensorfields.core._torch_impl import (
    accumulate_along_rays_torch,
    march_rays_torch,
    occupancy_bits_torch,
    ray_aabb_intersect_torch,
    render_transmittance_torch,
)
from tensorfields.core.bitfield import pack_bits, unpack_bits
from tensorfields.core.render import _AccumulateAlongRays, _RenderTransmittance

AABB = torch.tensor([-1.0, -1.5, -1.0, 1.0, 1.0, 1.2])
EMPTY_BITS = torch.empty(0, dtype=torch.uint8)


def _rays(n: int, dtype=torch.float32, seed: int = 0, device="cpu"):
    """Random rays around the box, some axis-parallel, some pointing away, some starting inside."""
    g = torch.Generator().manual_seed(seed)
    origins = torch.randn(n, 3, generator=g, dtype=dtype) * 2.5
    directions = torch.nn.functional.normalize(torch.randn(n, 3, generator=g, dtype=dtype), dim=-1)
    directions[:4, 1:] = 0.0  # along x
    directions[4:6] = torch.tensor([0.0, 0.0, -1.0], dtype=dtype)
    origins[6:9] = 0.0  # inside the box
    offsets = torch.rand(n, generator=g, dtype=dtype)
    return origins.to(device), directions.to(device), offsets.to(device)


def _assert_same(native_out, reference_out) -> None:
    for a, b in zip(native_out, reference_out, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.device == b.device
        assert torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("near, far", [(0.0, float("inf")), (0.5, 4.0), (9.0, 10.0)])
def test_ray_aabb_matches_reference(native_module, device, dtype, near, far) -> None:
    origins, directions, _ = _rays(500, dtype, device=device)
    aabb = AABB.to(device, dtype)
    native = native_module.ray_aabb_intersect(origins, directions, aabb, near, far)
    _assert_same(native, ray_aabb_intersect_torch(origins, directions, aabb, near, far))


GRIDS = {
    "random": lambda g: torch.rand(13, 7, 19, generator=g) > 0.6,
    "all occupied": lambda g: torch.ones(5, 6, 7, dtype=torch.bool),
    "all empty": lambda g: torch.zeros(5, 6, 7, dtype=torch.bool),
    "one cell": lambda g: torch.ones(1, 1, 1, dtype=torch.bool),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grid_name", [*GRIDS, None])
@pytest.mark.parametrize("max_samples", [-1, 3])
def test_march_matches_reference(native_module, device, dtype, grid_name, max_samples) -> None:
    origins, directions, offsets = _rays(700, dtype, device=device)
    aabb = AABB.to(device, dtype)
    t_min, t_max = ray_aabb_intersect_torch(origins, directions, aabb, 0.0, 1e10)
    t_max[10:20] = t_min[10:20]  # zero-length rays
    t_max[20] = float("inf")  # an endless ray gets no samples
    bits, res = EMPTY_BITS.to(device), [0, 0, 0]
    if grid_name is not None:
        grid = GRIDS[grid_name](torch.Generator().manual_seed(1))
        bits, res = pack_bits(grid).to(device), list(grid.shape)
    args = (origins, directions, t_min, t_max, 0.021, offsets, bits, res, aabb, max_samples)
    reference = march_rays_torch(*args[:7], tuple(res), *args[8:])
    native = native_module.march_rays(*args)
    _assert_same(native, reference)
    if grid_name == "all empty":
        assert native[0].numel() == 0
    else:
        assert native[0].numel() > 0
    assert 20 not in native[0].tolist()


def test_march_no_rays(native_module, device) -> None:
    empty, none = torch.empty(0, 3, device=device), torch.empty(0, device=device)
    out = native_module.march_rays(
        empty, empty, none, none, 0.1, none, EMPTY_BITS.to(device), [0, 0, 0], AABB.to(device),
        -1,
    )  # fmt: skip
    assert [t.numel() for t in out] == [0, 0, 0] and out[0].dtype == torch.long


def _packed(per_ray: list[int], dtype=torch.float32, seed: int = 0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    ray_indices = torch.repeat_interleave(torch.arange(len(per_ray)), torch.tensor(per_ray))
    s = ray_indices.numel()
    deltas = 0.02 + 0.1 * torch.rand(s, generator=g, dtype=dtype)
    t_starts = 2.0 + torch.rand(s, generator=g, dtype=dtype)  # only the lengths matter
    sigmas = 20.0 * torch.rand(s, generator=g, dtype=dtype) ** 3
    return [t.to(device) for t in (sigmas, t_starts, t_starts + deltas, ray_indices)]


# Rays with many samples, one sample, none (in the middle and at the end).
PER_RAY = [40, 1, 0, 17, 200, 0, 3, 0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("eps", [0.0, 1e-3, 0.5])
def test_transmittance_matches_reference(native_module, device, dtype, eps) -> None:
    sigmas, t0, t1, ray_indices = _packed(PER_RAY, dtype, device=device)
    n = len(PER_RAY)
    g = torch.Generator().manual_seed(3)
    grad_w = torch.randn(sigmas.shape, generator=g, dtype=dtype).to(device)
    grad_t = torch.randn(sigmas.shape, generator=g, dtype=dtype).to(device)
    results = []
    for native in (False, True):
        s = sigmas.clone().requires_grad_()
        if native:
            w, t = _RenderTransmittance.apply(native_module, s, t0, t1, ray_indices, n, eps)
        else:
            w, t = render_transmittance_torch(s, t0, t1, ray_indices, n, eps)
        (w * grad_w + t * grad_t).sum().backward()
        results.append((w.detach(), t.detach(), s.grad))
    tol = {"rtol": 1e-5, "atol": 1e-6} if dtype == torch.float32 else {}
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, **tol)
    terminated = results[1][1] == 0
    if eps >= 0.5:
        assert terminated.any()  # the case really terminates rays early
    assert (results[1][0][terminated] == 0).all() and (results[1][2][terminated] == 0).all()


def test_transmittance_gradcheck(native_module, device) -> None:
    sigmas, t0, t1, ray_indices = _packed([5, 1, 0, 3], torch.float64, device=device)
    sigmas = sigmas.requires_grad_()

    def fn(s):
        return _RenderTransmittance.apply(native_module, s, t0, t1, ray_indices, 4, 0.0)

    assert torch.autograd.gradcheck(fn, (sigmas,))


def test_transmittance_no_samples(native_module, device) -> None:
    empty = torch.empty(0, device=device)
    w, t = native_module.render_transmittance_fwd(
        empty, empty, empty, torch.empty(0, dtype=torch.long, device=device), 3, 0.0
    )
    assert w.numel() == t.numel() == 0


@pytest.mark.parametrize("channels", [None, 1, 3])
def test_accumulate_matches_reference(native_module, device, channels) -> None:
    weights, _, _, ray_indices = _packed(PER_RAY, torch.float64, device=device)
    n = len(PER_RAY)
    g = torch.Generator().manual_seed(4)
    values = None
    if channels is not None:
        values = torch.rand(weights.numel(), channels, generator=g, dtype=torch.float64)
        values = values.to(device).requires_grad_()
    weights = weights.clone().requires_grad_()
    ref = accumulate_along_rays_torch(weights, values, ray_indices, n)
    empty = weights.new_empty(0)
    nat = _AccumulateAlongRays.apply(
        native_module, weights, empty if values is None else values, ray_indices, n
    )
    torch.testing.assert_close(nat, ref)
    assert (nat[torch.tensor(PER_RAY) == 0] == 0).all()  # rays without samples
    inputs = [weights] if values is None else [weights, values]
    grad = torch.randn(ref.shape, generator=g, dtype=torch.float64).to(device)
    for a, b in zip(
        torch.autograd.grad(ref, inputs, grad), torch.autograd.grad(nat, inputs, grad), strict=True
    ):
        torch.testing.assert_close(a, b)
    if values is not None:

        def fn(w, v):
            return _AccumulateAlongRays.apply(native_module, w, v, ray_indices, n)

        assert torch.autograd.gradcheck(fn, (weights, values))


@pytest.mark.parametrize("kernel", [1, 3, 5])
@pytest.mark.parametrize("shape", [(33, 20, 41), (1, 1, 1), (2, 9, 3)])
def test_occupancy_bits_match_reference(native_module, device, kernel, shape) -> None:
    alpha = (torch.rand(shape, generator=torch.Generator().manual_seed(0)) ** 12).to(device)
    for threshold in (0.5, 2.0, -1.0):  # some cells, none, all
        bits = native_module.occupancy_bits(alpha, threshold, kernel)
        assert torch.equal(bits, occupancy_bits_torch(alpha, threshold, kernel))
    assert unpack_bits(native_module.occupancy_bits(alpha, -1.0, kernel), shape).all()
    assert not native_module.occupancy_bits(alpha, 2.0, kernel).any()


def test_bad_inputs_raise_clear_errors(native_module) -> None:
    sigmas, t0, t1, ray_indices = _packed([3, 2])
    with pytest.raises(RuntimeError, match="sorted"):
        native_module.render_transmittance_fwd(sigmas, t0, t1, ray_indices.flip(0), 2, 0.0)
    with pytest.raises(RuntimeError, match=r"\[0, n_rays\)"):
        native_module.render_transmittance_fwd(sigmas, t0, t1, ray_indices, 1, 0.0)
    with pytest.raises(RuntimeError, match="values must be"):
        native_module.accumulate_along_rays_fwd(sigmas, torch.ones(4, 3), ray_indices, 2)
    with pytest.raises(RuntimeError, match="t_ends"):
        native_module.render_transmittance_fwd(sigmas, t0, t1[:-1], ray_indices, 2, 0.0)
    origins, directions, offsets = _rays(4)
    t = torch.ones(4)
    with pytest.raises(RuntimeError, match="bytes"):
        native_module.march_rays(
            origins, directions, t, t, 0.1, offsets, torch.zeros(3, dtype=torch.uint8),
            [4, 4, 4], AABB, -1,
        )  # fmt: skip
    with pytest.raises(RuntimeError, match="step_size"):
        native_module.march_rays(
            origins, directions, t, t, 0.0, offsets, EMPTY_BITS, [0, 0, 0], AABB, -1
        )
    with pytest.raises(RuntimeError, match="odd"):
        native_module.occupancy_bits(torch.rand(4, 4, 4), 0.5, 2)
    with pytest.raises(RuntimeError, match="float32 or float64"):
        native_module.occupancy_bits(torch.ones(2, 2, 2, dtype=torch.int32), 0.5, 3)


def test_bitfield_round_trip() -> None:
    grid = torch.rand(5, 3, 7, generator=torch.Generator().manual_seed(0)) > 0.5
    bits = pack_bits(grid)
    assert bits.dtype == torch.uint8 and bits.numel() == (5 * 3 * 7 + 7) // 8
    assert torch.equal(unpack_bits(bits, (5, 3, 7)), grid)
    with pytest.raises(ValueError, match="bytes"):
        unpack_bits(bits[:-1], (5, 3, 7))
