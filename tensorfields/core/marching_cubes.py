"""Marching cubes on a density grid sampled at cell centres (scikit-image's implementation, the
one the official TensoRF code extracts meshes with).

Grid convention (the one :func:`tensorfields.core.occupancy.cell_centers` samples): value
``[i, j, k]`` of an ``(X, Y, Z)`` grid is the density at the centre of cell ``(i, j, k)`` of the
box, ``world = aabb_min + (index + 0.5) * (aabb_max - aabb_min) / resolution`` per axis. So
the surface is found between ``aabb_min + cell / 2`` and ``aabb_max - cell / 2``; matter in the
outer half cell of the box is not meshed (pad the grid to mesh it).
"""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor

INSTALL_HINT = "mesh export needs scikit-image: pip install scikit-image"


def extract_mesh(
    density_grid: Float[Tensor, "x y z"], aabb: Float[Tensor, "6"], level: float
) -> tuple[Float[Tensor, "v 3"], Int[Tensor, "f 3"]]:
    """The ``level`` isosurface of a cell-centre density grid over ``aabb`` as world-space
    vertices ``(v, 3)`` and triangles ``(f, 3)`` (int64 vertex indices).

    Triangles wind counter-clockwise seen from the low-density side (outside a solid), so the
    right-hand normal ``(b - a) x (c - a)`` points out of the object, as viewers expect.
    Raises ValueError when ``level`` is not strictly inside the grid's value range (the mesh
    would be empty) and ImportError with the install line when scikit-image is missing.
    """
    try:
        from skimage.measure import marching_cubes
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    if density_grid.dim() != 3 or min(density_grid.shape) < 2:
        raise ValueError(
            f"marching cubes needs an (X, Y, Z) grid with at least 2 cells per axis, got shape "
            f"{tuple(density_grid.shape)}"
        )
    volume = density_grid.detach().cpu().float().numpy()
    low, high = float(volume.min()), float(volume.max())
    if not low < level < high:
        raise ValueError(
            f"level {level:g} is outside the density grid's range [{low:g}, {high:g}]: the mesh "
            "would be empty (choose a level inside the range)"
        )
    box = aabb.detach().cpu().double()
    resolution = torch.tensor(density_grid.shape, dtype=torch.float64)
    cell = (box[3:] - box[:3]) / resolution
    # 'ascent': density grows into the object, which makes skimage wind faces outward.
    verts, faces, _, _ = marching_cubes(
        volume, level=level, spacing=tuple(cell.tolist()), gradient_direction="ascent"
    )
    # skimage puts grid index 0 at 0; our index 0 is the first cell's centre.
    origin = box[:3] + 0.5 * cell
    vertices = torch.from_numpy(verts).double() + origin
    return vertices.float(), torch.from_numpy(faces.astype("int64"))
