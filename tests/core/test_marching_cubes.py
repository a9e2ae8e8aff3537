"""Marching cubes on cell-centre density grids: analytic surfaces land where they should."""

from __future__ import annotations

import sys

import pytest
import torch

from tensorfields.core.marching_cubes import extract_mesh
from tensorfields.core.occupancy import cell_centers


def _grid(aabb: torch.Tensor, resolution: tuple[int, int, int], density) -> torch.Tensor:
    return density(cell_centers(aabb, resolution))


def test_sphere_radius_within_a_voxel() -> None:
    """Density falling off from a centre: vertices at the sphere's radius, faces wound outward."""
    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])
    resolution, radius, level = (48, 48, 48), 0.6, 25.0
    grid = _grid(aabb, resolution, lambda p: 100.0 * (radius - p.norm(dim=-1)) + level)
    vertices, faces = extract_mesh(grid, aabb, level)
    voxel = 2.0 / 48
    r = vertices.norm(dim=-1)
    assert faces.shape[1] == 3 and faces.dtype == torch.int64 and len(faces) > 1000
    assert int(faces.max()) < len(vertices)
    assert (r - radius).abs().max() < voxel / 2
    assert (r.mean() - radius).abs() < voxel / 20
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    outward = (torch.linalg.cross(b - a, c - a) * (a + b + c)).sum(-1)
    assert (outward > 0).all()


def test_off_centre_box_maps_cells_to_world() -> None:
    """An off-centre, non-cubic box with non-cubic cells: a sphere keeps its centre and radius,
    and planes (exact under linear interpolation) land exactly where they are."""
    aabb = torch.tensor([1.0, -2.0, 0.5, 3.0, 0.0, 3.5])
    resolution = (40, 50, 60)  # cells of 0.05, 0.04, 0.05
    centre, radius = torch.tensor([2.1, -0.9, 1.8]), 0.7
    grid = _grid(aabb, resolution, lambda p: 10.0 - 20.0 * (p - centre).norm(dim=-1))
    vertices, _ = extract_mesh(grid, aabb, level=10.0 - 20.0 * radius)
    assert ((vertices - centre).norm(dim=-1) - radius).abs().max() < 0.05 / 2
    assert (vertices.mean(0) - centre).abs().max() < 0.01
    for axis, at in ((0, 2.23), (1, -1.37), (2, 0.61)):
        grid = _grid(aabb, resolution, lambda p, a=axis: p[..., a])
        vertices, _ = extract_mesh(grid, aabb, level=at)
        assert torch.allclose(vertices[:, axis], torch.full_like(vertices[:, axis], at), atol=1e-5)
        others = [k for k in range(3) if k != axis]
        cell = (aabb[3:] - aabb[:3]) / torch.tensor(resolution)
        lo, hi = aabb[:3] + cell / 2, aabb[3:] - cell / 2  # the outermost cell centres
        assert torch.allclose(vertices[:, others].amin(0), lo[others], atol=1e-5)
        assert torch.allclose(vertices[:, others].amax(0), hi[others], atol=1e-5)


def test_level_outside_the_range_is_a_clear_error() -> None:
    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])
    grid = torch.rand(8, 8, 8) * 10.0
    with pytest.raises(ValueError, match=r"level 25 is outside the density grid's range \[0"):
        extract_mesh(grid, aabb, 25.0)
    with pytest.raises(ValueError, match="at least 2 cells per axis"):
        extract_mesh(torch.rand(8, 1, 8), aabb, 0.5)


def test_missing_scikit_image_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "skimage.measure", None)  # import fails
    with pytest.raises(ImportError, match="pip install scikit-image"):
        extract_mesh(torch.rand(4, 4, 4), torch.tensor([0.0, 0, 0, 1, 1, 1]), 0.5)
