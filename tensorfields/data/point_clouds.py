"""Coloured point clouds to start Gaussians from: PLY, or COLMAP's points3D.txt / .bin."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.data.errors import DataError
from tensorfields.data.ply import read_ply_vertices, vertex_positions

Points = tuple[Float[Tensor, "n 3"], Float[Tensor, "n 3"]]


def read_points(path: Path) -> Points:
    """``(xyz, rgb in [0, 1])``; points without colours are mid grey."""
    path = Path(path)
    if path.suffix == ".ply":
        return _ply_points(path)
    if path.name.endswith(".txt"):
        return _colmap_text(path)
    if path.name.endswith(".bin"):
        return _colmap_binary(path)
    raise DataError(path, "unknown point cloud format (expected .ply, points3D.txt or .bin)")


def _result(xyz: np.ndarray, rgb: np.ndarray, path: Path) -> Points:
    if len(xyz) == 0:
        raise DataError(path, "the point cloud has no points")
    return torch.from_numpy(xyz.astype(np.float32)), torch.from_numpy(rgb.astype(np.float32))


def _ply_points(path: Path) -> Points:
    columns = read_ply_vertices(path)
    xyz = vertex_positions(columns, path)
    if {"red", "green", "blue"} <= set(columns):
        rgb = np.stack([columns[c] for c in ("red", "green", "blue")], axis=1).astype(np.float64)
        rgb = rgb / 255.0 if rgb.max(initial=0) > 1.0 else rgb
    else:
        rgb = np.full_like(xyz, 0.5)
    return _result(xyz, rgb, path)


def _colmap_text(path: Path) -> Points:
    """``POINT3D_ID X Y Z R G B ERROR TRACK[]`` per line, ``#`` comments."""
    xyz, rgb = [], []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        words = line.split()
        try:
            xyz.append([float(w) for w in words[1:4]])
            rgb.append([int(w) / 255.0 for w in words[4:7]])
        except ValueError as exc:
            raise DataError(path, f"line {number} is not a COLMAP point: {exc}") from exc
        if len(words) < 8:
            raise DataError(path, f"line {number} has {len(words)} fields, a point needs 8+")
    return _result(np.array(xyz).reshape(-1, 3), np.array(rgb).reshape(-1, 3), path)


def _colmap_binary(path: Path) -> Points:
    """uint64 count; per point: uint64 id, 3 float64 xyz, 3 uint8 rgb, float64 error, uint64
    track length, then (int32 image, int32 point2D) per track element."""
    try:
        data = path.read_bytes()
        (count,) = struct.unpack_from("<Q", data, 0)
        offset, xyz, rgb = 8, np.empty((count, 3)), np.empty((count, 3))
        for i in range(count):
            _, x, y, z, r, g, b, _, track = struct.unpack_from("<QdddBBBdQ", data, offset)
            xyz[i], rgb[i] = (x, y, z), (r / 255.0, g / 255.0, b / 255.0)
            offset += 51 + 8 * track
            if offset > len(data):
                raise struct.error("file ends inside a point")
    except (OSError, struct.error) as exc:
        raise DataError(path, f"not a COLMAP points3D.bin (or cut short): {exc}") from exc
    return _result(xyz, rgb, path)
