"""Visual-hull carving of a sphere seen by cameras all around it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tensorfields.core.carving import carve_visual_hull, covered_pixels
from tensorfields.core.occupancy import OccupancyGrid, cell_centers
from tensorfields.core.rays import ray_aabb_intersect
from tensorfields.core.sampling import march_rays
from tensorfields.data.cameras import Cameras, opengl_to_opencv
from tensorfields.data.procedural import look_at_origin

RADIUS = 0.5
AABB = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])
SIZE = 48


def _cameras() -> Cameras:
    positions = [
        (3.0, 0.0, 0.0),
        (-3.0, 0.0, 0.0),
        (0.0, 3.0, 0.0),
        (0.0, -3.0, 0.0),
        (0.0, 0.0, 3.0),
        (0.0, 0.0, -3.0),
        (2.0, 2.0, 1.0),
        (-2.0, 1.0, -2.0),
    ]
    gl = torch.tensor(np.stack([look_at_origin(np.array(p)) for p in positions]))
    c2w = opengl_to_opencv(gl.float())
    n = c2w.shape[0]
    focal = torch.full((n,), 0.5 * SIZE / np.tan(0.5 * 0.9))  # 0.9 rad field of view
    center = torch.full((n,), SIZE / 2)
    return Cameras(c2w, focal, focal.clone(), center, center.clone(), SIZE, SIZE)


def _sphere_masks(cameras: Cameras) -> torch.Tensor:
    """A pixel is foreground when the ray through its centre hits the sphere."""
    masks = []
    for i in range(len(cameras)):
        o, d = cameras.rays(i)
        b = (o * d).sum(-1)
        c = (o * o).sum(-1) - RADIUS**2
        disc = b * b - c
        t_far = -b + disc.clamp(min=0).sqrt()
        masks.append((disc >= 0) & (t_far > 0))
    return torch.stack(masks)


@pytest.fixture(scope="module")
def carved() -> torch.Tensor:
    cameras = _cameras()
    masks = _sphere_masks(cameras)
    intrinsics = torch.stack([cameras.fx, cameras.fy, cameras.cx, cameras.cy], -1)
    return carve_visual_hull(cameras.c2w, intrinsics, masks, AABB, (32, 32, 32))


def test_masks_show_the_sphere_in_the_middle() -> None:
    masks = _sphere_masks(_cameras())
    assert masks[:, SIZE // 2, SIZE // 2].all()
    assert not masks[:, 0, 0].any()
    # The silhouette is a centred disc: as many foreground pixels in each camera (+-10%).
    counts = masks.sum(dim=(1, 2)).float()
    assert counts.min() > 0.9 * counts.max()


def test_cells_inside_the_sphere_are_kept(carved: torch.Tensor) -> None:
    assert carved.shape == (32, 32, 32) and carved.dtype == torch.bool
    centers = cell_centers(AABB, (32, 32, 32))
    inside = centers.norm(dim=-1) <= RADIUS
    assert inside.sum() > 100
    assert carved[inside].all()


def test_cells_far_outside_are_removed(carved: torch.Tensor) -> None:
    centers = cell_centers(AABB, (32, 32, 32))
    far = centers.abs().amax(dim=-1) > 0.9
    assert not carved[far].any()
    # Carving is conservative but not much larger than the sphere's bounding cube.
    assert not carved[centers.norm(dim=-1) > 0.85].any()
    assert carved.sum() < 0.3 * carved.numel()


def test_nothing_seen_as_foreground_removes_everything_seen() -> None:
    cameras = _cameras()
    masks = torch.zeros(len(cameras), SIZE, SIZE, dtype=torch.bool)
    intrinsics = torch.stack([cameras.fx, cameras.fy, cameras.cx, cameras.cy], -1)
    grid = carve_visual_hull(cameras.c2w, intrinsics, masks, AABB, (8, 8, 8))
    assert not grid.any()


def test_cells_no_camera_sees_are_kept() -> None:
    # One camera on +z looking down with a narrow view: cells outside its frustum stay.
    gl = torch.tensor(look_at_origin(np.array([0.0, 0.0, 3.0])))[None].float()
    c2w = opengl_to_opencv(gl)
    focal = 0.5 * SIZE / np.tan(0.5 * 0.2)
    intrinsics = torch.tensor([[focal, focal, SIZE / 2, SIZE / 2]])
    masks = torch.zeros(1, SIZE, SIZE, dtype=torch.bool)
    grid = carve_visual_hull(c2w, intrinsics, masks, AABB, (8, 8, 8))
    assert grid.any() and not grid.all()
    assert grid[0, 0].all() and grid[-1, -1].all()  # the corner columns are out of view
    assert not grid[3:5, 3:5].any()  # the centre column is seen as background


def _rays_through_occupied(cameras: Cameras, index: int, grid: torch.Tensor) -> torch.Tensor:
    """Reference: march each pixel's ray finely and look for an occupied cell."""
    o, d = cameras.rays(index)
    o, d = o.reshape(-1, 3), d.reshape(-1, 3)
    t_min, t_max = ray_aabb_intersect(o, d, AABB)
    ray_idx, _, _ = march_rays(o, d, t_min, t_max, 0.01, None, OccupancyGrid.from_dense(grid, AABB))
    hit = torch.bincount(ray_idx, minlength=o.shape[0]) > 0
    return hit.reshape(cameras.height, cameras.width)


def test_covered_pixels_contain_every_ray_through_occupied_cells(carved: torch.Tensor) -> None:
    cameras = _cameras()
    intrinsics = torch.stack([cameras.fx, cameras.fy, cameras.cx, cameras.cy], -1)
    covered = covered_pixels(cameras.c2w, intrinsics, carved, AABB, SIZE, SIZE)
    assert covered.shape == (len(cameras), SIZE, SIZE)
    for i in range(len(cameras)):
        hit = _rays_through_occupied(cameras, i, carved)
        assert hit.any()
        assert not (hit & ~covered[i]).any()  # conservative
        assert covered[i].float().mean() < 0.9  # but not everything


def test_covered_pixels_of_an_empty_grid_are_empty() -> None:
    cameras = _cameras()
    intrinsics = torch.stack([cameras.fx, cameras.fy, cameras.cx, cameras.cy], -1)
    empty = torch.zeros(8, 8, 8, dtype=torch.bool)
    assert not covered_pixels(cameras.c2w, intrinsics, empty, AABB, SIZE, SIZE).any()
