"""Ray / box intersection: entry and exit distances, misses, near/far clamping, parallel rays."""

from __future__ import annotations

import pytest
import torch

from tensorfields.core.rays import ray_aabb_intersect

pytestmark = pytest.mark.usefixtures("backend")

UNIT_BOX = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])


def test_axis_aligned_rays_through_unit_box() -> None:
    origins = torch.tensor([[-5.0, 0.0, 0.0], [0.0, 3.0, 0.5], [0.2, -0.3, 4.0]])
    directions = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
    t_min, t_max = ray_aabb_intersect(origins, directions, UNIT_BOX)
    torch.testing.assert_close(t_min, torch.tensor([4.0, 2.0, 3.0]))
    torch.testing.assert_close(t_max, torch.tensor([6.0, 4.0, 5.0]))


def test_diagonal_ray_and_non_unit_box() -> None:
    aabb = torch.tensor([0.0, 0.0, 0.0, 2.0, 1.0, 4.0])
    d = torch.tensor([[1.0, 1.0, 1.0]]) / 3**0.5
    t_min, t_max = ray_aabb_intersect(torch.tensor([[-1.0, -1.0, -1.0]]), d, aabb)
    # Enters when all of x, y, z >= 0 (s = 1), leaves when y reaches 1 (s = 2); t = s * sqrt(3).
    torch.testing.assert_close(t_min, torch.tensor([3**0.5]))
    torch.testing.assert_close(t_max, torch.tensor([2 * 3**0.5]))


def test_missing_rays_have_empty_interval() -> None:
    origins = torch.tensor([[-5.0, 2.0, 0.0], [-5.0, 0.0, 0.0], [0.0, 0.0, 5.0]])
    directions = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.6, 0.0, 0.8]])
    # Passes above the box; points away from it; leaves upwards from above it.
    t_min, t_max = ray_aabb_intersect(origins, directions, UNIT_BOX)
    assert (t_max <= t_min).all()


def test_near_far_clamping() -> None:
    origins = torch.tensor([[-5.0, 0.0, 0.0]] * 3)
    directions = torch.tensor([[1.0, 0.0, 0.0]] * 3)
    t_min, t_max = ray_aabb_intersect(origins, directions, UNIT_BOX, near=4.5, far=5.5)
    torch.testing.assert_close(t_min, torch.full((3,), 4.5))
    torch.testing.assert_close(t_max, torch.full((3,), 5.5))
    # The box lies entirely before `near` or beyond `far`: an empty interval.
    for near, far in ((7.0, 10.0), (0.0, 3.0)):
        t_min, t_max = ray_aabb_intersect(origins, directions, UNIT_BOX, near=near, far=far)
        assert (t_max <= t_min).all()


def test_origin_inside_box_starts_at_near() -> None:
    t_min, t_max = ray_aabb_intersect(
        torch.tensor([[0.5, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]]), UNIT_BOX, near=0.0
    )
    torch.testing.assert_close(t_min, torch.tensor([0.0]))
    torch.testing.assert_close(t_max, torch.tensor([0.5]))


def test_zero_direction_components() -> None:
    # Parallel to two axes: inside the slabs of those axes -> hit; outside either -> miss.
    origins = torch.tensor(
        [[0.3, -0.2, -4.0], [0.0, 0.0, 4.0], [1.5, 0.0, -4.0], [0.0, -1.2, -4.0], [0.0, 0.0, -4.0]]
    )
    directions = torch.tensor(
        [[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, -0.0, 1.0]]
    )
    t_min, t_max = ray_aabb_intersect(origins, directions, UNIT_BOX)
    assert torch.isfinite(t_min).all() and torch.isfinite(t_max).all()
    torch.testing.assert_close(t_min[[0, 1, 4]], torch.tensor([3.0, 3.0, 3.0]))
    torch.testing.assert_close(t_max[[0, 1, 4]], torch.tensor([5.0, 5.0, 5.0]))
    assert (t_max[[2, 3]] <= t_min[[2, 3]]).all()
    # Parallel to one axis only (diagonal in the xz plane, y component 0).
    d = torch.tensor([[1.0, 0.0, 1.0]]) / 2**0.5
    t_min, t_max = ray_aabb_intersect(torch.tensor([[-2.0, 0.0, -2.0]]), d, UNIT_BOX)
    torch.testing.assert_close(t_min, torch.tensor([2**0.5]))
    torch.testing.assert_close(t_max, torch.tensor([3 * 2**0.5]))
