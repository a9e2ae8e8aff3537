"""Gaussian splats as PLY in the layout of the 3DGS reference code, which common splat viewers
read: x, y, z, nx, ny, nz, f_dc_0..2, f_rest_0..(3(K-1)-1), opacity, scale_0..2, rot_0..3.

Values are stored raw, as 3DGS stores them: opacity as a logit, scales as logs, rotations as
quaternions (w, x, y, z) not necessarily normalised, colours as SH coefficients. ``f_rest`` is
channel-major (all red coefficients, then green, then blue).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.data.errors import DataError
from tensorfields.data.ply import read_ply_vertices, write_ply_vertices

# Raw Gaussian attributes, as the splat container stores them: (n, ...) float tensors.
SplatTensors = dict[str, Tensor]


def _n(name: str, count: int) -> list[str]:
    return [f"{name}_{i}" for i in range(count)]


def write_gaussian_ply(path: Path, splats: SplatTensors) -> None:
    """Write ``means (n, 3)``, ``sh0 (n, 1, 3)``, ``shN (n, K-1, 3)``, ``opacities (n)``
    (logits), ``scales (n, 3)`` (logs) and ``quats (n, 4)``."""
    means = splats["means"].detach().cpu().float()
    sh0 = splats["sh0"].detach().cpu().float().reshape(len(means), 3)
    rest = splats["shN"].detach().cpu().float()
    rest = rest.transpose(1, 2).reshape(len(means), -1)  # (n, 3 * (K-1)), channel-major
    columns: dict[str, np.ndarray] = {}
    for name, values in (
        (["x", "y", "z"], means),
        (["nx", "ny", "nz"], torch.zeros_like(means)),
        (_n("f_dc", 3), sh0),
        (_n("f_rest", rest.shape[1]), rest),
        (["opacity"], splats["opacities"].detach().cpu().float()[:, None]),
        (_n("scale", 3), splats["scales"].detach().cpu().float()),
        (_n("rot", 4), splats["quats"].detach().cpu().float()),
    ):
        for i, column in enumerate(name):
            columns[column] = values[:, i].numpy()
    write_ply_vertices(path, columns)


def read_gaussian_ply(path: Path) -> SplatTensors:
    """Read a 3DGS-layout PLY (ours or another tool's) into the raw tensors of
    :func:`write_gaussian_ply`; names the file and the missing properties when it is not one."""
    path = Path(path)
    columns = read_ply_vertices(path)
    rest_count = sum(1 for name in columns if name.startswith("f_rest_"))
    required = ["x", "y", "z", *_n("f_dc", 3), "opacity", *_n("scale", 3), *_n("rot", 4)]
    missing = [name for name in required + _n("f_rest", rest_count) if name not in columns]
    if missing:
        raise DataError(path, f"not a 3DGS Gaussian PLY: missing properties {missing}")
    coeffs = rest_count // 3 + 1
    degree = math.isqrt(coeffs) - 1
    if rest_count % 3 or (degree + 1) ** 2 != coeffs or degree > 3:
        raise DataError(path, f"{rest_count} f_rest properties fit no SH degree 0-3")

    def stack(names: list[str]) -> Float[Tensor, "n k"]:
        return torch.from_numpy(np.stack([columns[n] for n in names], axis=1).astype(np.float32))

    n = len(columns["x"])
    rest = stack(_n("f_rest", rest_count)) if rest_count else torch.zeros(n, 0)
    return {
        "means": stack(["x", "y", "z"]),
        "sh0": stack(_n("f_dc", 3))[:, None, :],
        "shN": rest.reshape(n, 3, coeffs - 1).transpose(1, 2).contiguous(),
        "opacities": stack(["opacity"])[:, 0],
        "scales": stack(_n("scale", 3)),
        "quats": stack(_n("rot", 4)),
    }
