"""Meshes from a model's density field: sample it on a grid over its box, marching cubes,
vertex colours from the appearance branch; written as PLY or OBJ.

Any model answering ``density_bounds`` / ``density_at`` / ``color_at`` (:class:`Model`) can be
meshed; the others raise the model's "no density field" error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

from tensorfields.core.marching_cubes import extract_mesh
from tensorfields.data.ply import write_ply_vertices
from tensorfields.models.base import Model


@dataclass
class Mesh:
    """A triangle mesh in world coordinates with per-vertex colours in [0, 1]."""

    vertices: Float[Tensor, "v 3"]
    faces: Int[Tensor, "f 3"]
    colors: Float[Tensor, "v 3"]


def grid_resolution(aabb: Float[Tensor, "6"], resolution: int) -> tuple[int, int, int]:
    """Cells per axis: ``resolution`` along the box's longest side, the others in proportion
    (cubic cells, at least 2 per axis)."""
    size = (aabb[3:] - aabb[:3]).tolist()
    longest = max(size)
    return tuple(max(2, math.ceil(resolution * s / longest - 1e-6)) for s in size)


@torch.no_grad()
def sample_density_grid(
    model: Model, aabb: Float[Tensor, "6"], resolution: tuple[int, int, int], chunk: int = 2**18
) -> Float[Tensor, "x y z"]:
    """``model.density_at`` at the cell centres of a grid over ``aabb`` (the layout
    :func:`extract_mesh` reads), generated slab by slab so memory stays at ``chunk`` points."""
    nx, ny, nz = resolution
    axes = [
        aabb[i] + (torch.arange(r, device=aabb.device, dtype=aabb.dtype) + 0.5)
        * (aabb[i + 3] - aabb[i]) / r
        for i, r in enumerate(resolution)
    ]  # fmt: skip
    yz = torch.stack(torch.meshgrid(axes[1], axes[2], indexing="ij"), dim=-1).reshape(-1, 2)
    slab = max(1, chunk // (ny * nz))
    grid = torch.empty(resolution)
    for i in range(0, nx, slab):
        xs = axes[0][i : i + slab]
        points = torch.cat(
            [xs.repeat_interleave(yz.shape[0])[:, None], yz.repeat(xs.shape[0], 1)], dim=1
        )
        grid[i : i + slab] = model.density_at(points).reshape(-1, ny, nz).float().cpu()
    return grid


def vertex_normals(
    vertices: Float[Tensor, "v 3"], faces: Int[Tensor, "f 3"]
) -> Float[Tensor, "v 3"]:
    """Unit outward normals: the area-weighted sum of the adjacent faces' right-hand normals
    (faces from :func:`extract_mesh` wind outward); zero for vertices in no face."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    face_normals = torch.linalg.cross(b - a, c - a)  # length = twice the area
    sums = torch.zeros_like(vertices)
    for k in range(3):
        sums.index_add_(0, faces[:, k], face_normals)
    return F.normalize(sums, dim=-1)


@torch.no_grad()
def vertex_colors(
    model: Model, vertices: Float[Tensor, "v 3"], faces: Int[Tensor, "f 3"], chunk: int = 2**16
) -> Float[Tensor, "v 3"]:
    """The appearance branch's colour at each vertex, looked at head-on from outside.

    The view direction is the inward normal, the way a camera ray travels when it meets the
    surface face-on: colours are view-dependent, and training only saw the surface from
    outside, so averaging fixed directions (some from behind the surface) would mix in colours
    the field never learned.
    """
    device = model.density_bounds().device
    points, views = vertices.to(device), -vertex_normals(vertices, faces).to(device)
    parts = [
        model.color_at(points[i : i + chunk], views[i : i + chunk]).float().cpu()
        for i in range(0, points.shape[0], chunk)
    ]
    return torch.cat(parts).clamp(0.0, 1.0) if parts else torch.zeros(0, 3)


# TensoRF's mesh export thresholds alpha over one marching step at 0.005.
OFFICIAL_STEP_ALPHA = 0.005


def extract_model_mesh(
    model: Model, resolution: int = 256, level: float | None = None, chunk: int = 2**18
) -> Mesh:
    """The ``level`` isosurface of the model's density (renderer units: per world length;
    default: the density whose alpha over one marching step is TensoRF's 0.005) on a grid of
    ``resolution`` cells along the longest side of its box, with vertex colours."""
    aabb = model.density_bounds()
    if level is None:
        level = -math.log(1.0 - OFFICIAL_STEP_ALPHA) / model.step_size()
    cells = grid_resolution(aabb, resolution)
    grid = sample_density_grid(model, aabb, cells, chunk)
    vertices, faces = extract_mesh(grid, aabb.cpu(), level)
    return Mesh(vertices, faces, vertex_colors(model, vertices, faces))


def write_mesh_ply(path: Path, mesh: Mesh) -> None:
    """Binary little-endian PLY: float x y z, uchar red green blue, triangle list."""
    xyz = mesh.vertices.cpu().numpy()
    rgb = np.round(mesh.colors.cpu().numpy() * 255.0).astype(np.uint8)
    columns = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    columns |= {name: rgb[:, i] for i, name in enumerate(("red", "green", "blue"))}
    write_ply_vertices(path, columns, faces=mesh.faces.cpu().numpy())


def write_mesh_obj(path: Path, mesh: Mesh) -> None:
    """Wavefront OBJ with vertex colours as ``v x y z r g b`` (r, g, b in [0, 1]: the common
    extension MeshLab, Blender and Open3D read), 1-based faces; written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    rows = np.concatenate([mesh.vertices.cpu().numpy(), mesh.colors.cpu().numpy()], axis=1)
    with open(temp, "w") as f:
        f.write(f"# tensorfields mesh: {len(rows)} vertices, {len(mesh.faces)} faces\n")
        np.savetxt(f, rows, fmt="v %.6f %.6f %.6f %.4f %.4f %.4f")
        np.savetxt(f, mesh.faces.cpu().numpy() + 1, fmt="f %d %d %d")
    temp.replace(path)


def write_mesh(path: Path, mesh: Mesh, format: Literal["ply", "obj"]) -> None:
    """Write ``mesh`` as ``format`` ('ply' or 'obj')."""
    writers = {"ply": write_mesh_ply, "obj": write_mesh_obj}
    if format not in writers:
        raise ValueError(f"unknown mesh format {format!r}; expected 'ply' or 'obj'")
    writers[format](path, mesh)
