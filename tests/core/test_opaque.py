"""The no-grad density passes that stop each ray where it turns opaque (TensoRF's VM density,
Strivec's local tensors): native vs reference, and the fields that take them."""

from __future__ import annotations

import pytest
import torch

from tensorfields.core._torch_impl import (
    render_transmittance_torch,
    vm_density_transmittance_torch,
    vm_interp_summed_torch,
)
from tensorfields.core.interp import LINE_AXES, PLANE_AXES
from tensorfields.core.local_tensors import LocalScale, build_tensor_index
from tensorfields.core.opaque import (
    has_fused_density_pass,
    local_cp_density_transmittance,
    local_cp_density_transmittance_torch,
    vm_density_transmittance,
)
from tensorfields.representations.strivec_field import Scale, StrivecField
from tensorfields.representations.tensorf_field import TensoRFField


@pytest.fixture(autouse=True)
def _auto_backend(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TF_BACKEND", raising=False)


def _factors(res, components, gain, dtype, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    planes = [
        torch.rand(1, components, res[b], res[a], generator=g, dtype=dtype) for a, b in PLANE_AXES
    ]
    lines = [
        torch.rand(1, components, res[c], 1, generator=g, dtype=dtype) * gain for c in LINE_AXES
    ]
    return [f.to(device) for f in planes], [f.to(device) for f in lines]


def _rays(per_ray: list[int], dtype, device="cpu", seed=1):
    """Packed samples along straight rays through (and past) the [-1, 1] box."""
    g = torch.Generator().manual_seed(seed)
    ray_idx = torch.repeat_interleave(torch.arange(len(per_ray)), torch.tensor(per_ray))
    origins = torch.rand(len(per_ray), 3, generator=g, dtype=dtype) * 0.4 - 1.4
    directions = torch.nn.functional.normalize(
        torch.rand(len(per_ray), 3, generator=g, dtype=dtype) + 0.5, dim=-1
    )
    step = 0.05
    rank = torch.arange(ray_idx.numel()) - torch.repeat_interleave(
        torch.cumsum(torch.tensor(per_ray), 0) - torch.tensor(per_ray), torch.tensor(per_ray)
    )
    t0 = rank.to(dtype) * step
    t1 = t0 + step
    xyz = origins[ray_idx] + directions[ray_idx] * (0.5 * (t0 + t1))[:, None]
    return [x.to(device) for x in (xyz, t0, t1, ray_idx)]


PER_RAY = [80, 0, 1, 120, 3, 0, 60, 200]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("gain", "eps"), [(0.3, 1e-4), (6.0, 1e-4), (6.0, 0.0), (6.0, 0.5)])
def test_native_matches_reference(native_module, dtype, gain, eps):
    """CPU only: on a GPU the fields compose the two native passes instead."""
    planes, lines = _factors((9, 7, 11), 5, gain, dtype)
    xyz, t0, t1, ray_idx = _rays(PER_RAY, dtype)
    args = (planes, lines, t0, t1, ray_idx, len(PER_RAY), -1.0, 3.0, eps)
    value, trans = vm_density_transmittance(xyz, *args)
    ref_value, ref_trans = vm_density_transmittance_torch(xyz, *args)
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(value, ref_value, **tol)
    torch.testing.assert_close(trans, ref_trans, **tol)
    # Each ray keeps a prefix of its samples; the dense factors make some rays opaque early.
    kept = trans > 0
    if gain > 1 and eps > 0:
        assert (~kept).sum() > 0.3 * xyz.shape[0]
    _assert_prefixes(kept, ray_idx)


def _assert_prefixes(kept, ray_idx):
    """Each ray keeps a prefix of its samples: none kept after a dropped one."""
    for r in range(int(ray_idx.max()) + 1):
        ray_kept = kept[ray_idx == r]
        assert not (ray_kept[1:] & ~ray_kept[:-1]).any()


def test_reference_is_the_two_passes():
    planes, lines = _factors((6, 5, 4), 3, 6.0, torch.float64)
    xyz, t0, t1, ray_idx = _rays([40, 25], torch.float64)
    value, trans = vm_density_transmittance_torch(
        xyz, planes, lines, t0, t1, ray_idx, 2, -1.0, 3.0, 1e-3
    )
    raw = vm_interp_summed_torch(xyz, planes, lines)
    _assert_cut_compositing(value, trans, raw, t0, t1, ray_idx)


def _assert_cut_compositing(value, trans, raw, t0, t1, ray_idx):
    """``trans`` is render_transmittance of ``softplus(raw - 1) * 3`` over two rays and
    ``value`` is ``raw``, both cut to 0 where T < 1e-3; some samples are cut, not all."""
    sigmas = torch.nn.functional.softplus(raw - 1.0) * 3.0
    _, full = render_transmittance_torch(sigmas, t0, t1, ray_idx, 2, 0.0)
    alive = full >= 1e-3
    torch.testing.assert_close(trans, torch.where(alive, full, 0.0))
    torch.testing.assert_close(value, torch.where(alive, raw, 0.0))
    assert alive.any() and not alive.all()


def test_no_samples_and_no_rays(native_module):
    planes, lines = _factors((4, 4, 4), 2, 1.0, torch.float32)
    empty = torch.zeros(0)
    value, trans = native_module.vm_density_transmittance(
        torch.zeros(0, 3),
        planes,
        lines,
        empty,
        empty,
        torch.zeros(0, dtype=torch.long),
        0,
        0.0,
        1.0,
        1e-4,
    )
    assert value.shape == trans.shape == (0,)


def test_bad_inputs_raise_clearly(native_module):
    planes, lines = _factors((4, 4, 4), 2, 1.0, torch.float32)
    xyz, t0, t1, ray_idx = _rays([5, 5], torch.float32)
    op = native_module.vm_density_transmittance
    with pytest.raises(RuntimeError, match="ray_indices must be sorted"):
        op(xyz, planes, lines, t0, t1, ray_idx.flip(0), 2, 0.0, 1.0, 1e-4)
    with pytest.raises(RuntimeError, match=r"t_ends must be \[10\]"):
        op(xyz, planes, lines, t0, t1[:4], ray_idx, 2, 0.0, 1.0, 1e-4)
    with pytest.raises(RuntimeError, match="scale and eps >= 0"):
        op(xyz, planes, lines, t0, t1, ray_idx, 2, 0.0, 1.0, -1.0)
    with pytest.raises(RuntimeError, match=r"ray_indices must lie in \[0, n_rays\)"):
        op(xyz, planes, lines, t0, t1, ray_idx, 1, 0.0, 1.0, 1e-4)


def test_backend_torch_runs_the_reference(monkeypatch: pytest.MonkeyPatch, native_module):
    planes, lines = _factors((5, 5, 5), 2, 6.0, torch.float32)
    xyz, t0, t1, ray_idx = _rays([30, 30], torch.float32)
    calls = []
    monkeypatch.setattr(
        "tensorfields.core.opaque.vm_density_transmittance_torch",
        lambda *a: calls.append(1) or vm_density_transmittance_torch(*a),
    )
    vm_density_transmittance(xyz, planes, lines, t0, t1, ray_idx, 2, 0.0, 1.0, 1e-4)
    assert not calls  # native
    monkeypatch.setenv("TF_BACKEND", "torch")
    vm_density_transmittance(xyz, planes, lines, t0, t1, ray_idx, 2, 0.0, 1.0, 1e-4)
    assert calls


@pytest.mark.parametrize("kind", ["vm", "cp"])
def test_field_pass_matches_the_generic_two_passes(native_module, device, kind):
    """TensoRF's VM field takes the fused pass on a CPU; it gives what the generic pass gives
    (on a GPU both are the generic pass, with native ops)."""
    aabb = torch.tensor([-1.5, -1.5, -1.5, 1.5, 1.5, 1.5])
    field = TensoRFField(aabb, (12, 10, 8), kind=kind, density_components=4, init_scale=2.0)
    field = field.to(device)
    field.density_shift = 0.0
    xyz, t0, t1, ray_idx = _rays(PER_RAY, torch.float32, device)
    xyz = xyz * 1.5
    assert has_fused_density_pass(xyz) == (device.type == "cpu")
    args = (xyz, t0, t1, ray_idx, len(PER_RAY), 25.0, 1e-4)
    features, trans, _ = field.density_transmittance(*args)
    generic_features, generic_trans, _ = super(TensoRFField, field).density_transmittance(*args)
    kept = generic_trans > 0
    assert kept.any() and not kept.all()
    torch.testing.assert_close(trans, generic_trans, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(features[kept], generic_features[kept], atol=1e-5, rtol=1e-5)


# -- Strivec: local CP tensors at several scales ----------------------------------------------


def _local_scales(dtype, gain, counts=(20, 60), halves=(0.6, 0.3), ranks=(3, 5), seed=2):
    """Random cubes in [-1, 1]^3 (rays run through and past them: some samples are uncovered)."""
    g = torch.Generator().manual_seed(seed)
    scales = []
    for count, half, rank in zip(counts, halves, ranks, strict=True):
        centres = torch.rand(count, 3, generator=g, dtype=dtype) * 2 - 1
        lines = torch.rand(3, count, 6, rank, generator=g, dtype=dtype) * gain
        scales.append(LocalScale(centres, half, build_tensor_index(centres, half, half), lines))
    return scales


def _assert_same_pass(got, want, dtype, eps):
    """Outputs of the two Strivec passes: on the samples both keep, the same values (-inf where
    some scale covers nothing), cubes and weights; the transmittance everywhere. Dropped
    samples (T = 0 when eps > 0) have no cubes."""
    value, trans, ids, weights = got
    ref_value, ref_trans, ref_ids, ref_weights = want
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(trans, ref_trans, **tol)
    kept = (trans > 0) & (ref_trans > 0)
    torch.testing.assert_close(value[kept], ref_value[kept], **tol)
    for i, ref_i, w, ref_w in zip(ids, ref_ids, weights, ref_weights, strict=True):
        assert torch.equal(i[kept], ref_i[kept])
        torch.testing.assert_close(w[kept], ref_w[kept], **tol)
        dropped = trans == 0 if eps > 0 else torch.zeros_like(kept)
        assert (i[dropped] == -1).all() and (w[dropped] == 0).all()
    return kept


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("gain", "eps"), [(0.5, 1e-4), (4.0, 1e-4), (4.0, 0.0), (4.0, 0.5)])
def test_local_cp_pass_matches_reference(native_module, dtype, gain, eps):
    """CPU only: on a GPU the Strivec field composes the per-sample native ops instead."""
    scales = _local_scales(dtype, gain)
    xyz, t0, t1, ray_idx = _rays(PER_RAY, dtype)
    args = (scales, 4, t0, t1, ray_idx, len(PER_RAY), -1.0, 3.0, eps)
    got = local_cp_density_transmittance(xyz, *args)
    want = local_cp_density_transmittance_torch(xyz, *args)
    kept = _assert_same_pass(got, want, dtype, eps)
    assert torch.isinf(got[0][kept]).any() and torch.isfinite(got[0][kept]).any()
    if gain > 1 and eps > 0:
        assert (~kept).sum() > 0.3 * xyz.shape[0]
    _assert_prefixes(kept, ray_idx)


def test_local_cp_reference_is_lookup_then_compositing():
    """The twin's T is render_transmittance of the masked densities, cut where T < eps."""
    scales = _local_scales(torch.float64, 4.0)
    xyz, t0, t1, ray_idx = _rays([40, 25], torch.float64)
    value, trans, _, _ = local_cp_density_transmittance_torch(
        xyz, scales, 4, t0, t1, ray_idx, 2, -1.0, 3.0, 1e-3
    )
    raw, _, _, _ = local_cp_density_transmittance_torch(
        xyz, scales, 4, t0, t1, ray_idx, 2, -1.0, 3.0, 0.0
    )
    _assert_cut_compositing(value, trans, raw, t0, t1, ray_idx)


def test_local_cp_pass_without_samples(native_module):
    scales = _local_scales(torch.float32, 1.0)
    empty = torch.zeros(0)
    value, trans, ids, weights = local_cp_density_transmittance(
        torch.zeros(0, 3),
        scales,
        4,
        empty,
        empty,
        torch.zeros(0, dtype=torch.long),
        0,
        0.0,
        1.0,
        1e-4,
    )
    assert value.shape == trans.shape == (0,)
    assert [i.shape for i in ids] == [w.shape for w in weights] == [(0, 4), (0, 4)]


def test_local_cp_pass_rejects_bad_inputs(native_module):
    scales = _local_scales(torch.float32, 1.0)
    xyz, t0, t1, ray_idx = _rays([5, 5], torch.float32)
    op = native_module.local_cp_density_transmittance

    def call(centres=None, lines=None, ray=ray_idx, k=4, eps=1e-4):
        return op(
            xyz,
            centres or [s.centres for s in scales],
            [s.half_extent for s in scales],
            [s.index.aabb for s in scales],
            [n for s in scales for n in s.index.resolution],
            [s.index.cell_slot for s in scales],
            [s.index.table for s in scales],
            lines or [s.lines for s in scales],
            k,
            1e-6,
            t0,
            t1,
            ray,
            2,
            0.0,
            1.0,
            eps,
        )

    with pytest.raises(RuntimeError, match="per scale"):
        call(centres=[scales[0].centres])
    with pytest.raises(RuntimeError, match="lines must be"):
        call(lines=[scales[0].lines, scales[0].lines])
    with pytest.raises(RuntimeError, match="ray_indices must be sorted"):
        call(ray=ray_idx.flip(0))
    with pytest.raises(RuntimeError, match="k must lie in"):
        call(k=0)
    with pytest.raises(RuntimeError, match="scale and eps >= 0"):
        call(eps=-1.0)


def test_strivec_field_pass_matches_the_generic_passes(native_module, device):
    """Strivec's field takes the fused pass on a CPU, with the same densities, transmittance
    and cubes as the generic passes (on a GPU both are the generic passes)."""
    aabb = torch.tensor([-1.5, -1.5, -1.5, 1.5, 1.5, 1.5])
    field = StrivecField(aabb, [Scale(0.4, 0.6, 3, 4), Scale(0.2, 0.3, 2, 4)], [6, 5])
    g = torch.Generator().manual_seed(3)
    field.place([torch.rand(20, 3, generator=g) * 2 - 1, torch.rand(60, 3, generator=g) * 2 - 1])
    with torch.no_grad():
        for lines in field.density_lines:
            lines.mul_(10.0)
    field = field.to(device)
    field.density_shift = 0.0
    xyz, t0, t1, ray_idx = _rays(PER_RAY, torch.float32, device)
    assert has_fused_density_pass(xyz) == (device.type == "cpu")
    args = (xyz, t0, t1, ray_idx, len(PER_RAY), 25.0, 1e-4)
    value, trans, cubes = field.density_transmittance(*args)
    ref_value, ref_trans, ref_cubes = super(StrivecField, field).density_transmittance(*args)
    got = (value, trans, cubes.ids, cubes.weights)
    want = (ref_value, ref_trans, ref_cubes.ids, ref_cubes.weights)
    kept = _assert_same_pass(
        [v.cpu() if torch.is_tensor(v) else [x.cpu() for x in v] for v in got],
        [v.cpu() if torch.is_tensor(v) else [x.cpu() for x in v] for v in want],
        torch.float32,
        1e-4,
    )
    assert kept.any() and not kept.all()
