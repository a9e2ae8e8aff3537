"""Strivec's local tensors: placement, the indexed top-K lookup against a scan, CP
interpolation, and the native mix against its PyTorch twin (outputs and gradients)."""

from __future__ import annotations

import pytest
import torch

from tensorfields.core._torch_impl import local_cp_mix_torch
from tensorfields.core.local_tensors import (
    _LocalCPMix,
    build_tensor_index,
    covering_tensors,
    covering_tensors_brute,
    covering_tensors_torch,
    local_cp_features,
    local_cp_sums,
)
from tensorfields.representations.placement import (
    farthest_point_sampling,
    place_tensors,
    voxel_means,
)


def test_voxel_means_of_known_clusters() -> None:
    # Points fill voxels (0,0,0), (2,0,0) and (0,1,3) of size 0.5 (the grid starts at the
    # points' minimum, here the origin): one tensor per occupied voxel, at its points' mean.
    clusters = {
        (0, 0, 0): torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.4, 0.1]]),
        (2, 0, 0): torch.tensor([[1.1, 0.1, 0.1], [1.3, 0.3, 0.3], [1.2, 0.2, 0.2]]),
        (0, 1, 3): torch.tensor([[0.25, 0.75, 1.75]]),
    }
    points = torch.cat(list(clusters.values()))
    centres = voxel_means(points[torch.randperm(len(points))], 0.5)
    expected = torch.stack([c.mean(0) for c in clusters.values()])
    assert centres.shape == (3, 3)
    for row in expected:
        assert torch.isclose(centres, row, atol=1e-6).all(1).any()
    assert voxel_means(points[:0], 0.5).shape == (0, 3)
    with pytest.raises(ValueError, match="voxel_size must be > 0"):
        voxel_means(points, 0.0)


def test_farthest_point_sampling_spreads_and_caps() -> None:
    corners = torch.tensor([[0.0, 0, 0], [1, 1, 1], [0, 1, 0], [1, 0, 1]])
    near_origin = 0.01 * torch.rand(20, 3)
    points = torch.cat([corners[:1], near_origin, corners[1:]])
    chosen = farthest_point_sampling(points, 4)
    assert sorted(chosen.tolist()) == [0, 21, 22, 23]  # the corners, none of the cluster
    assert place_tensors(points, 0.5, max_count=2).shape == (2, 3)
    assert farthest_point_sampling(points, 100).numel() == len(points)


@pytest.mark.parametrize("count", [0, 1, 300])
def test_indexed_lookup_equals_the_scan(count: int) -> None:
    gen = torch.Generator().manual_seed(count)
    centres = torch.rand(count, 3, generator=gen) * 2 - 1
    half = 0.15
    index = build_tensor_index(centres, half, half)
    xyz = torch.rand(5000, 3, generator=gen) * 2.6 - 1.3  # some points outside every cube
    ids, weights = covering_tensors(xyz, centres, half, index, k=4)
    ref_ids, ref_weights = covering_tensors_brute(xyz, centres, half, k=4)
    assert torch.equal(ids, ref_ids)
    torch.testing.assert_close(weights, ref_weights)
    hit = ids[:, 0] >= 0
    if count == 300:
        assert 0 < hit.float().mean() < 1 and (ids >= 0).sum(1).max() == 4
        torch.testing.assert_close(weights[hit].sum(1), torch.ones(int(hit.sum())))
    assert (weights[~hit] == 0).all()
    if count:  # every found id covers its point; the nearest comes first
        found = ids >= 0
        offset = xyz[:, None, :] - centres[ids.clamp(min=0)]
        assert (offset.abs().amax(-1)[found] <= half).all()
        distance = offset.norm(dim=-1).masked_fill(~found, float("inf"))
        assert (distance[:, :-1] <= distance[:, 1:]).all()


def test_inverse_distance_weights() -> None:
    centres = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.0, 0.0]])
    xyz = torch.tensor([[0.05, 0.0, 0.0]])
    index = build_tensor_index(centres, 0.3, 0.3)
    ids, weights = covering_tensors(xyz, centres, 0.3, index, k=4)
    assert ids.tolist() == [[0, 1, -1, -1]]
    w = torch.tensor([1 / (0.05 + 1e-6), 1 / (0.15 + 1e-6)])
    torch.testing.assert_close(weights[0, :2], w / w.sum())


def test_local_cp_reproduces_a_separable_field() -> None:
    # Lines f(x) = 1 + x, g(y) = 2 - y, h(z) = 3z over the cube of half-extent 0.5 around c:
    # linear functions, so linear interpolation on 9 nodes is exact; rank 2 = [f g h, 1 1 1].
    centre, half, nodes = torch.tensor([[0.3, -0.2, 0.1]]), 0.5, 9
    local = torch.linspace(-half, half, nodes)
    world = [centre[0, a] + local for a in range(3)]
    lines = torch.ones(3, 1, nodes, 2)
    lines[0, 0, :, 0] = 1 + world[0]
    lines[1, 0, :, 0] = 2 - world[1]
    lines[2, 0, :, 0] = 3 * world[2]
    xyz = centre + (torch.rand(200, 3) - 0.5) * 2 * half
    products = local_cp_features(xyz, torch.zeros(200, dtype=torch.long), centre, half, lines)
    expected = (1 + xyz[:, 0]) * (2 - xyz[:, 1]) * (3 * xyz[:, 2])
    torch.testing.assert_close(products[:, 0], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(products[:, 1], torch.ones(200))


def test_local_cp_gradients_match_finite_differences() -> None:
    gen = torch.Generator().manual_seed(0)
    centres = torch.rand(3, 3, generator=gen, dtype=torch.float64)
    lines = torch.randn(3, 3, 5, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    ids = torch.tensor([0, 2, 1, 2])
    xyz = centres[ids] + (torch.rand(4, 3, generator=gen, dtype=torch.float64) - 0.5) * 0.3
    assert torch.autograd.gradcheck(lambda t: local_cp_features(xyz, ids, centres, 0.2, t), lines)


def _mix_inputs(n: int, m: int, k: int, dtype, device, seed: int = 0):
    """Points near random cubes, k slots each, some empty (-1) and one point with none."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.rand(m, 3, generator=gen, dtype=dtype) * 2 - 1
    ids = torch.randint(0, m, (n, k), generator=gen)
    ids[torch.rand(n, k, generator=gen) < 0.3] = -1
    ids[:1] = -1
    ids[1:2, 0] = 0
    half = 0.2
    # Inside the first valid cube of each point; the others may be a little off (clamped).
    first = torch.where(ids[:, 0] >= 0, ids[:, 0], torch.zeros_like(ids[:, 0]))
    xyz = centres[first] + (torch.rand(n, 3, generator=gen, dtype=dtype) * 2 - 1) * half
    xyz[1:2] = centres[first[1:2]] + half  # exactly on a cube's corner
    weights = torch.rand(n, k, generator=gen, dtype=dtype) * (ids >= 0)
    lines = torch.randn(3, m, 6, 5, generator=gen, dtype=dtype)
    return [t.to(device) for t in (xyz, ids, weights, centres)] + [half, lines.to(device)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(300, 40, 4), (2, 1, 1), (0, 3, 4)])
def test_native_mix_matches_reference(native_module, device, dtype, shape) -> None:
    xyz, ids, weights, centres, half, lines = _mix_inputs(*shape, dtype, device)
    lines.requires_grad_()
    reference = local_cp_mix_torch(xyz, ids, weights, centres, half, lines)
    native = _LocalCPMix.apply(native_module, xyz, ids, weights, centres, half, lines)
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(native, reference, **tol)
    grad = torch.randn_like(reference)
    (ref_grad,) = torch.autograd.grad(reference, lines, grad)
    (nat_grad,) = torch.autograd.grad(native, lines, grad)
    torch.testing.assert_close(nat_grad, ref_grad, **tol)


@pytest.mark.parametrize("shape", [(300, 40, 4), (0, 3, 4)])
def test_native_summed_mix_matches_reference(native_module, device, shape) -> None:
    xyz, ids, weights, centres, half, lines = _mix_inputs(*shape, torch.float64, device)
    summed = native_module.local_cp_mix_fwd(xyz, ids, weights, centres, half, lines, True)
    torch.testing.assert_close(
        summed, local_cp_mix_torch(xyz, ids, weights, centres, half, lines).sum(1)
    )
    grad = torch.randn(shape[0], dtype=torch.float64, device=device)
    expanded = grad[:, None].expand(-1, lines.shape[3]).contiguous()
    torch.testing.assert_close(
        native_module.local_cp_mix_bwd(grad, xyz, ids, weights, centres, half, lines),
        native_module.local_cp_mix_bwd(expanded, xyz, ids, weights, centres, half, lines),
    )


def test_native_mix_gradcheck(native_module, device) -> None:
    xyz, ids, weights, centres, half, lines = _mix_inputs(6, 3, 2, torch.float64, device)
    lines.requires_grad_()

    def fn(t):
        return _LocalCPMix.apply(native_module, xyz, ids, weights, centres, half, t)

    assert torch.autograd.gradcheck(fn, (lines,))


def test_native_mix_rejects_bad_inputs(native_module) -> None:
    xyz, ids, weights, centres, half, lines = _mix_inputs(5, 4, 2, torch.float32, "cpu")
    with pytest.raises(RuntimeError, match="ids must lie in"):
        native_module.local_cp_mix_fwd(xyz, ids + 10, weights, centres, half, lines)
    with pytest.raises(RuntimeError, match="lines must be"):
        native_module.local_cp_mix_fwd(xyz, ids, weights, centres, half, lines[:, :2])
    with pytest.raises(RuntimeError, match="half_extent must be > 0"):
        native_module.local_cp_mix_fwd(xyz, ids, weights, centres, 0.0, lines)


def _lookup_case(name: str, dtype, device):
    """Cubes and points for the native lookup: random, all outside, no cubes, a lattice
    (ties: equidistant cubes), a point on a cube's face, one cube."""
    gen = torch.Generator().manual_seed(7)
    half = 0.15
    if name == "lattice":
        axis = torch.arange(-2, 3, dtype=dtype) * 0.2
        centres = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
        xyz = torch.cat([torch.zeros(1, 3, dtype=dtype) + 0.1, torch.rand(500, 3, generator=gen)])
        xyz = xyz.to(dtype) * 0.8 - 0.4
    else:
        count = {"random": 300, "outside": 50, "none": 0, "one": 1}[name]
        centres = torch.rand(count, 3, generator=gen, dtype=dtype) * 2 - 1
        xyz = torch.rand(4000, 3, generator=gen, dtype=dtype) * 2.6 - 1.3
        if name == "outside":
            xyz = xyz + 5.0
        if count:
            xyz[0] = centres[0] + torch.tensor([half, 0.0, -half], dtype=dtype)  # on the faces
    index = build_tensor_index(centres, half, half)
    return [t.to(device) for t in (xyz, centres)] + [half, index]


def _on_device(index, device):
    fields = {f: getattr(index, f) for f in ("aabb", "resolution", "cell_slot", "table")}
    for name in ("aabb", "cell_slot", "table"):
        fields[name] = fields[name].to(device)
    return type(index)(**fields)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", ["random", "outside", "none", "lattice", "one"])
@pytest.mark.parametrize("k", [1, 4, 8])
def test_native_lookup_matches_reference(native_module, device, dtype, case, k) -> None:
    xyz, centres, half, index = _lookup_case(case, dtype, device)
    index = _on_device(index, device)
    ref_ids, ref_weights = covering_tensors_torch(xyz, centres, half, index, k)
    ids, weights = native_module.covering_tensors(
        xyz,
        centres,
        half,
        index.aabb,
        list(index.resolution),
        index.cell_slot,
        index.table,
        k,
        1e-6,
    )
    # Equidistant cubes may come in either order: compare as sets of (id, weight) per point.
    order, ref_order = ids.sort(1).indices, ref_ids.sort(1).indices
    assert torch.equal(ids.gather(1, order), ref_ids.gather(1, ref_order))
    torch.testing.assert_close(weights.gather(1, order), ref_weights.gather(1, ref_order))
    if case != "lattice":  # no ties: the same order
        assert torch.equal(ids, ref_ids)
    assert (covering_tensors(xyz, centres, half, index, k)[0] == ids).all()  # the public op


def test_native_lookup_rejects_bad_inputs(native_module) -> None:
    xyz, centres, half, index = _lookup_case("random", torch.float32, "cpu")
    args = [xyz, centres, half, index.aabb, list(index.resolution), index.cell_slot, index.table]
    with pytest.raises(RuntimeError, match="k must lie in"):
        native_module.covering_tensors(*args, 17, 1e-6)
    with pytest.raises(RuntimeError, match="table ids must lie in"):
        native_module.covering_tensors(*args[:6], index.table + 1000, 4, 1e-6)
    with pytest.raises(RuntimeError, match="cell_slot must be int64"):
        native_module.covering_tensors(*args[:5], index.cell_slot[:-1], index.table, 4, 1e-6)
    with pytest.raises(RuntimeError, match="half_extent must be > 0"):
        native_module.covering_tensors(xyz, centres, -1.0, *args[3:], 4, 1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reused_sums_give_the_reference_gradients(native_module, device, dtype) -> None:
    # Two "scales" of cubes over the same points: with the no-grad value passed in, the result
    # is that value and the lines get the gradients of the recomputed reference.
    parts = []
    xyz = None
    for seed, rank in ((0, 3), (1, 5)):
        inputs = _mix_inputs(200, 30, 4, dtype, device, seed=seed)
        xyz = inputs[0] if xyz is None else xyz
        ids, weights, centres, half, lines = inputs[1:]
        parts.append((ids, weights, centres, half, lines[..., :rank].clone().requires_grad_()))
    with torch.no_grad():
        value = local_cp_sums(xyz, parts)
    reference = sum(local_cp_mix_torch(xyz, *part).sum(1) for part in parts)
    computed = local_cp_sums(xyz, parts)  # the native summed forward, no value given
    assert "LocalCPSums" in type(computed.grad_fn).__name__
    reused = local_cp_sums(xyz, parts, value)
    assert "LocalCPSums" in type(reused.grad_fn).__name__
    assert torch.equal(reused, value)
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(reused, reference, **tol)
    grad = torch.randn_like(reference)
    lines = [part[4] for part in parts]
    expected = torch.autograd.grad(reference, lines, grad)
    for result in (reused, computed):
        torch.testing.assert_close(result, reference, **tol)
        for got, want in zip(torch.autograd.grad(result, lines, grad), expected, strict=True):
            torch.testing.assert_close(got, want, **tol)
    with pytest.raises(ValueError, match="value must be"):
        local_cp_sums(xyz, parts, value[:-1])
