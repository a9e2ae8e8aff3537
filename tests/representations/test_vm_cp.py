"""VM and CP decompositions, the TensoRF field built on them, and the shading head."""

from __future__ import annotations

import math

import pytest
import torch

from tensorfields.representations.cp import CP
from tensorfields.representations.grid_factors import LINE_AXES, PLANE_AXES
from tensorfields.representations.shading import MLPFeaHead, positional_encoding
from tensorfields.representations.tensorf_field import (
    TensoRFField,
    log_linear_voxel_counts,
    resolution_for_voxels,
)
from tensorfields.representations.vm import VM

RES = (8, 6, 5)


def _nodes(n: int) -> torch.Tensor:
    return torch.linspace(-1.0, 1.0, n)  # align_corners: node i sits at -1 + 2i / (n - 1)


def _random_points(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _multilinear_vm(res: tuple[int, int, int], components: int = 2) -> VM:
    """Planes f(u, v) = a + b u + c v + d u v, lines g(w) = e + f w: the field is multilinear,
    which (bi)linear interpolation represents exactly at any resolution."""
    vm = VM(components, res)
    with torch.no_grad():
        for p, (plane, line, (a, b), c) in enumerate(
            zip(vm.planes, vm.lines, PLANE_AXES, LINE_AXES, strict=True)
        ):
            for k in range(components):
                s = 1.0 + p + 0.5 * k
                v, u = torch.meshgrid(_nodes(res[b]), _nodes(res[a]), indexing="ij")
                plane[0, k] = 0.3 * s + 0.2 * u - 0.1 * s * v + 0.05 * u * v
                line[0, k, :, 0] = 0.5 - 0.25 * s * _nodes(res[c])
    return vm


def _multilinear_cp(res: tuple[int, int, int], components: int = 3) -> CP:
    cp = CP(components, res)
    with torch.no_grad():
        for axis, line in enumerate(cp.lines):
            for k in range(components):
                line[0, k, :, 0] = 0.4 + 0.1 * k - (0.2 + 0.1 * axis) * _nodes(res[axis])
    return cp


def _expected_multilinear_cp(xyz: torch.Tensor, components: int = 3) -> torch.Tensor:
    cols = []
    for k in range(components):
        value = torch.ones(xyz.shape[0])
        for axis in range(3):
            value = value * (0.4 + 0.1 * k - (0.2 + 0.1 * axis) * xyz[:, axis])
        cols.append(value)
    return torch.stack(cols, dim=1)


def test_vm_shapes_and_resolution() -> None:
    vm = VM(5, RES)
    assert vm.resolution == RES and vm.output_dim == 15
    assert [tuple(p.shape) for p in vm.planes] == [(1, 5, 6, 8), (1, 5, 5, 8), (1, 5, 5, 6)]
    assert [tuple(line.shape) for line in vm.lines] == [(1, 5, 5, 1), (1, 5, 6, 1), (1, 5, 8, 1)]
    xyz = _random_points(11)
    assert vm(xyz).shape == (11, 3, 5)
    assert vm.features(xyz).shape == (11, 15)
    assert vm.summed(xyz).shape == (11,)
    torch.testing.assert_close(vm.summed(xyz), vm(xyz).sum(dim=(1, 2)))


def test_cp_shapes_and_resolution() -> None:
    cp = CP(7, RES)
    assert cp.resolution == RES and cp.output_dim == 7
    xyz = _random_points(9)
    assert cp(xyz).shape == (9, 7) and cp.features(xyz).shape == (9, 7)
    assert cp.summed(xyz).shape == (9,)


def test_vm_reads_nodes_exactly() -> None:
    vm = VM(1, (3, 3, 3))
    with torch.no_grad():
        for plane in vm.planes:
            plane.zero_()
        for line in vm.lines:
            line.fill_(1.0)
        vm.planes[0][0, 0, 2, 0] = 5.0  # xy plane, row = y node 2, column = x node 0
    xyz = torch.tensor(
        [[-1.0, 1.0, 0.3], [1.0, -1.0, 0.3], [-1.0, 0.5, -0.7]]
    )  # y = 0.5: halfway between nodes 1 and 2
    torch.testing.assert_close(vm.summed(xyz), torch.tensor([5.0, 0.0, 2.5]))


def test_cp_multilinear_field_is_exact() -> None:
    cp = _multilinear_cp(RES)
    xyz = _random_points(64)
    torch.testing.assert_close(cp(xyz), _expected_multilinear_cp(xyz), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["vm", "cp"])
def test_resize_keeps_a_multilinear_field(kind: str) -> None:
    field = _multilinear_vm((8, 8, 8)) if kind == "vm" else _multilinear_cp((8, 8, 8))
    xyz = _random_points(200, seed=1)
    before = field(xyz)
    field.resize((15, 15, 15))
    assert field.resolution == (15, 15, 15)
    torch.testing.assert_close(field(xyz), before, atol=1e-5, rtol=1e-5)
    field.resize((9, 12, 15))  # anisotropic
    assert field.resolution == (9, 12, 15)
    torch.testing.assert_close(field(xyz), before, atol=1e-5, rtol=1e-5)


def test_resize_keeps_parameter_identity() -> None:
    vm = VM(2, (8, 8, 8))
    ids = [id(p) for p in vm.parameters()]
    vm.resize((15, 15, 15))
    assert [id(p) for p in vm.parameters()] == ids


@pytest.mark.parametrize("kind", ["vm", "cp"])
def test_crop_keeps_values_inside_the_new_box(kind: str) -> None:
    torch.manual_seed(0)
    aabb = torch.tensor([-1.5, -1.0, -0.5, 1.5, 1.0, 0.5])
    field = TensoRFField(
        aabb, (16, 12, 9), kind=kind, density_components=4, appearance_components=4,
        init_scale=0.5, density_shift=0.0, hidden=16,
    )  # fmt: skip
    new_aabb = torch.tensor([-0.63, -0.2, -0.41, 0.77, 0.9, 0.13])  # off the grid nodes
    gen = torch.Generator().manual_seed(2)
    xyz = new_aabb[:3] + torch.rand(500, 3, generator=gen) * (new_aabb[3:] - new_aabb[:3])
    dirs = torch.nn.functional.normalize(torch.randn(500, 3, generator=gen), dim=-1)
    density, color = field.density(xyz), field.color(xyz, dirs)
    field.crop(new_aabb)
    lo, hi = field.aabb[:3], field.aabb[3:]
    assert (lo <= new_aabb[:3]).all() and (hi >= new_aabb[3:]).all()
    assert (lo > aabb[:3]).any() and (hi < aabb[3:]).any()
    assert all(r < r0 for r, r0 in zip(field.resolution, (16, 12, 9), strict=True))
    # The box grows by less than one grid node on each side.
    unit = (aabb[3:] - aabb[:3]) / (torch.tensor([16, 12, 9]) - 1)
    assert (new_aabb[:3] - lo < unit + 1e-5).all() and (hi - new_aabb[3:] < unit + 1e-5).all()
    torch.testing.assert_close(field.density(xyz), density, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(field.color(xyz, dirs), color, atol=1e-5, rtol=1e-4)


def test_field_density_positive_and_color_in_unit_range() -> None:
    torch.manual_seed(0)
    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])
    field = TensoRFField(aabb, (10, 10, 10), density_components=3, appearance_components=4)
    xyz = _random_points(300) * 1.2  # some points outside the box, too
    dirs = torch.nn.functional.normalize(torch.randn(300, 3), dim=-1)
    density = field.density(xyz)
    color = field.color(xyz, dirs)
    assert density.shape == (300,) and color.shape == (300, 3)
    assert (density > 0).all() and torch.isfinite(density).all()
    assert (color > 0).all() and (color < 1).all()


def test_field_normalize_maps_box_to_unit_cube() -> None:
    aabb = torch.tensor([0.0, -2.0, 1.0, 4.0, 2.0, 2.0])
    field = TensoRFField(aabb, (4, 4, 4), density_components=1, appearance_components=1)
    corners = torch.tensor([[0.0, -2.0, 1.0], [4.0, 2.0, 2.0], [2.0, 0.0, 1.5]])
    expected = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(field.normalize(corners), expected)
    torch.testing.assert_close(field.voxel_size(), torch.tensor([4 / 3, 4 / 3, 1 / 3]))


def test_positional_encoding_layout() -> None:
    x = torch.tensor([[0.3, -1.1], [2.0, 0.5]])
    out = positional_encoding(x, 3)
    assert out.shape == (2, 12)
    for row in range(2):
        a, b = x[row].tolist()
        scaled = [a, 2 * a, 4 * a, b, 2 * b, 4 * b]  # per input, frequencies 1, 2, 4
        expected = [math.sin(s) for s in scaled] + [math.cos(s) for s in scaled]
        torch.testing.assert_close(out[row], torch.tensor(expected))


def test_mlp_fea_head_input_width() -> None:
    head = MLPFeaHead(27, feature_pe=2, view_pe=2, hidden=128)
    assert head.mlp[0].in_features == 150  # 27 + 3 + 2*2*27 + 2*2*3, as in the official code
    rgb = head(torch.randn(5, 27), torch.nn.functional.normalize(torch.randn(5, 3), dim=-1))
    assert rgb.shape == (5, 3) and ((rgb > 0) & (rgb < 1)).all()
    assert MLPFeaHead(8, feature_pe=0, view_pe=0, hidden=4).mlp[0].in_features == 11


def test_voxel_counts_and_resolution() -> None:
    counts = log_linear_voxel_counts(128**3, 300**3, 5)
    assert len(counts) == 5 and counts[-1] == pytest.approx(
        300**3, rel=1e-5
    )  # float32, as official
    assert all(a < b for a, b in zip(counts, counts[1:], strict=False))
    assert resolution_for_voxels(torch.tensor([-1.5] * 3 + [1.5] * 3), 128**3) == (128,) * 3
    res = resolution_for_voxels(torch.tensor([-1.0, -1.0, -0.5, 1.0, 1.0, 0.5]), 32**3)
    assert res[0] == res[1] and abs(res[0] - 2 * res[2]) <= 1
    assert abs(res[0] * res[1] * res[2] - 32**3) < 0.1 * 32**3
