"""Fixed-step packed marching: sample counts, ordering, empty rays and occupancy skipping."""

from __future__ import annotations

import math

import pytest
import torch

from tensorfields.core.occupancy import OccupancyGrid
from tensorfields.core.sampling import march_rays, sample_points

pytestmark = pytest.mark.usefixtures("backend")

BOX = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])


def _rays(n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    origins = torch.zeros(n, 3)
    origins[:, 0] = -3.0
    origins[:, 1] = torch.linspace(-0.5, 0.5, n)
    directions = torch.zeros(n, 3)
    directions[:, 0] = 1.0
    return origins, directions


def test_counts_follow_the_formula_and_samples_are_sorted() -> None:
    origins, directions = _rays(4)
    t_min = torch.tensor([2.0, 2.0, 1.5, 2.5])
    t_max = torch.tensor([4.05, 3.05, 4.52, 2.6])
    offsets = torch.tensor([0.0, 0.3, 0.75, 0.9])
    step = 0.1
    ray_idx, t0, t1 = march_rays(origins, directions, t_min, t_max, step, offsets)
    expected = [
        max(math.ceil((float(b) - float(a)) / step - float(o)), 0)
        for a, b, o in zip(t_min, t_max, offsets, strict=True)
    ]
    assert torch.bincount(ray_idx, minlength=4).tolist() == expected
    assert (ray_idx[1:] >= ray_idx[:-1]).all()  # sorted by ray
    torch.testing.assert_close(t1 - t0, torch.full_like(t0, step))
    for r in range(4):
        starts = t0[ray_idx == r]
        assert (starts[1:] > starts[:-1]).all()  # then by distance
        k = torch.arange(starts.numel(), dtype=starts.dtype)
        torch.testing.assert_close(starts, t_min[r] + (k + offsets[r]) * step)
        assert (starts < t_max[r]).all() and (starts >= t_min[r]).all()


def test_no_offsets_means_zero_offsets() -> None:
    origins, directions = _rays(2)
    t_min, t_max = torch.tensor([2.0, 2.2]), torch.tensor([4.0, 3.0])
    a = march_rays(origins, directions, t_min, t_max, 0.25)
    b = march_rays(origins, directions, t_min, t_max, 0.25, torch.zeros(2))
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y)
    assert torch.bincount(a[0]).tolist() == [8, 4]


def test_empty_rays_give_no_samples() -> None:
    origins, directions = _rays(3)
    t_min = torch.tensor([2.0, 3.0, 2.0])
    t_max = torch.tensor([3.0, 2.0, 2.0])  # ray 1 reversed, ray 2 zero length
    ray_idx, t0, t1 = march_rays(origins, directions, t_min, t_max, 0.1)
    assert set(ray_idx.tolist()) == {0}
    assert ray_idx.numel() == 10 and t0.shape == t1.shape == (10,)


def test_zero_samples_everywhere() -> None:
    origins, directions = _rays(3)
    t = torch.full((3,), 2.0)
    ray_idx, t0, t1 = march_rays(origins, directions, t, t - 1.0, 0.1)
    assert ray_idx.numel() == t0.numel() == t1.numel() == 0
    assert ray_idx.dtype == torch.long and t0.dtype == origins.dtype
    points = sample_points(origins, directions, ray_idx, t0, t1)
    assert points.shape == (0, 3)


def test_all_empty_occupancy_gives_zero_samples() -> None:
    origins, directions = _rays(4)
    t_min, t_max = torch.full((4,), 2.0), torch.full((4,), 4.0)
    grid = torch.zeros(8, 8, 8, dtype=torch.bool)
    ray_idx, t0, _ = march_rays(
        origins, directions, t_min, t_max, 0.1, None, OccupancyGrid.from_dense(grid, BOX)
    )
    assert ray_idx.numel() == 0 and t0.numel() == 0


def test_all_occupied_equals_no_grid() -> None:
    origins, directions = _rays(4)
    t_min, t_max = torch.full((4,), 2.0), torch.full((4,), 4.0)
    offsets = torch.tensor([0.1, 0.2, 0.3, 0.4])
    grid = torch.ones(8, 8, 8, dtype=torch.bool)
    with_grid = march_rays(
        origins, directions, t_min, t_max, 0.1, offsets, OccupancyGrid.from_dense(grid, BOX)
    )
    without = march_rays(origins, directions, t_min, t_max, 0.1, offsets)
    assert with_grid[0].numel() > 0
    for a, b in zip(with_grid, without, strict=True):
        torch.testing.assert_close(a, b)


def test_occupancy_keeps_only_samples_in_occupied_cells() -> None:
    origins, directions = _rays(1)
    grid = torch.zeros(4, 4, 4, dtype=torch.bool)
    grid[2] = True  # x in [0, 0.5)
    ray_idx, t0, t1 = march_rays(
        origins,
        directions,
        torch.tensor([2.0]),
        torch.tensor([4.0]),
        0.1,
        None,
        OccupancyGrid.from_dense(grid, BOX),
    )
    x = sample_points(origins, directions, ray_idx, t0, t1)[:, 0]
    assert x.numel() == 5
    assert (x >= 0.0).all() and (x < 0.5).all()


def test_max_samples_caps_each_ray() -> None:
    origins, directions = _rays(3)
    t_min = torch.full((3,), 2.0)
    t_max = torch.tensor([4.0, 2.25, 2.0])
    ray_idx, t0, _ = march_rays(origins, directions, t_min, t_max, 0.1, max_samples=5)
    assert torch.bincount(ray_idx, minlength=3).tolist() == [5, 3, 0]
    torch.testing.assert_close(t0[:5], 2.0 + 0.1 * torch.arange(5.0))  # the nearest five
