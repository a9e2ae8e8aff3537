"""Occupancy grids: cell lookup, queries, dilation and the bounds of occupied cells."""

from __future__ import annotations

import pytest
import torch

from tensorfields.core.occupancy import (
    cell_centers,
    cell_indices,
    dilate,
    occupied_bounds,
    query_occupancy,
)

pytestmark = pytest.mark.usefixtures("backend")

AABB = torch.tensor([0.0, -1.0, 2.0, 4.0, 1.0, 3.0])  # sizes 4, 2, 1
RES = (4, 2, 5)  # cells of 1 x 1 x 0.2


def test_cell_indices_of_known_points() -> None:
    xyz = torch.tensor(
        [
            [0.5, -0.5, 2.1],  # cell (0, 0, 0)
            [3.5, 0.5, 2.9],  # cell (3, 1, 4)
            [1.5, 0.2, 2.45],  # cell (1, 1, 2)
            [4.0, 1.0, 3.0],  # on the max corner: inside, clamped to the last cell
            [-0.1, 0.0, 2.5],  # outside (x)
            [2.0, 0.0, 3.5],  # outside (z)
        ]
    )
    flat, inside = cell_indices(xyz, AABB, RES)
    expected_ijk = [(0, 0, 0), (3, 1, 4), (1, 1, 2), (3, 1, 4)]
    for row, (i, j, k) in enumerate(expected_ijk):
        assert flat[row].item() == (i * RES[1] + j) * RES[2] + k
    assert inside.tolist() == [True, True, True, True, False, False]
    assert (flat >= 0).all() and (flat < 4 * 2 * 5).all()  # outside points still index safely


def test_query_occupancy() -> None:
    grid = torch.zeros(RES, dtype=torch.bool)
    grid[1, 1, 2] = True
    xyz = torch.tensor([[1.5, 0.2, 2.45], [1.9, 0.9, 2.59], [0.5, -0.5, 2.1], [1.5, 0.2, 3.5]])
    assert query_occupancy(xyz, grid, AABB).tolist() == [True, True, False, False]
    # Outside the box is never occupied, even when the clamped cell is.
    full = torch.ones(RES, dtype=torch.bool)
    outside = torch.tensor([[-0.5, 0.0, 2.5], [4.5, 0.0, 2.5], [2.0, 0.0, 1.9]])
    assert not query_occupancy(outside, full, AABB).any()


def test_cell_centers() -> None:
    centers = cell_centers(AABB, RES)
    assert centers.shape == (4, 2, 5, 3)
    torch.testing.assert_close(centers[0, 0, 0], torch.tensor([0.5, -0.5, 2.1]))
    torch.testing.assert_close(centers[3, 1, 4], torch.tensor([3.5, 0.5, 2.9]))
    flat, inside = cell_indices(centers.reshape(-1, 3), AABB, RES)
    assert inside.all() and flat.tolist() == list(range(40))


def test_dilate_single_voxel_to_cube() -> None:
    grid = torch.zeros(7, 7, 7, dtype=torch.bool)
    grid[3, 4, 2] = True
    out = dilate(grid)
    assert out.dtype == torch.bool and out.shape == grid.shape
    expected = torch.zeros_like(grid)
    expected[2:5, 3:6, 1:4] = True
    assert torch.equal(out, expected)
    # At a corner the cube is cut by the border; an empty grid stays empty.
    corner = torch.zeros(4, 4, 4, dtype=torch.bool)
    corner[0, 0, 0] = True
    assert dilate(corner).sum().item() == 8
    assert not dilate(torch.zeros(3, 3, 3, dtype=torch.bool)).any()


def test_occupied_bounds() -> None:
    grid = torch.zeros(RES, dtype=torch.bool)
    grid[1, 0, 2] = True
    grid[2, 0, 3] = True
    torch.testing.assert_close(
        occupied_bounds(grid, AABB), torch.tensor([1.0, -1.0, 2.4, 3.0, 0.0, 2.8])
    )
    grid[0, 1, 4] = True
    torch.testing.assert_close(
        occupied_bounds(grid, AABB), torch.tensor([0.0, -1.0, 2.4, 3.0, 1.0, 3.0])
    )


def test_occupied_bounds_of_empty_grid_is_the_box() -> None:
    bounds = occupied_bounds(torch.zeros(RES, dtype=torch.bool), AABB)
    torch.testing.assert_close(bounds, AABB)
    assert bounds.data_ptr() != AABB.data_ptr()
