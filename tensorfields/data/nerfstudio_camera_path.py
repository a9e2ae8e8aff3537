"""nerfstudio camera-path JSON (``ns-render camera-path``): read paths made there, write ours.

Poses are OpenGL camera-to-world in the file (converted to our OpenCV convention) and are taken
in this run's world coordinates: a path exported from a nerfstudio run that re-centred or
rescaled its scene will not line up.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float

from tensorfields.data.cameras import OPENGL_TO_OPENCV, Cameras
from tensorfields.data.errors import DataError
from tensorfields.data.transforms import (
    cameras_from_opengl,
    read_json,
    read_number,
    require,
)


def read_nerfstudio_camera_path(path: Path) -> tuple[Cameras, float]:
    """The cameras and frame rate of a nerfstudio camera-path file (``camera_path`` entries with
    a flattened OpenGL ``camera_to_world`` and a vertical ``fov`` in degrees; ``render_width``,
    ``render_height``; ``fps``, else frames / ``seconds``, else 24). Bad files raise DataError."""
    path = Path(path)
    meta = read_json(path)
    width, height = (
        _read_size(require(meta, f"render_{k}", path), path, f"render_{k}")
        for k in ("width", "height")
    )
    kind = meta.get("camera_type", "perspective")
    if kind != "perspective":
        raise DataError(path, f"camera_type {kind!r} is not supported (only 'perspective')")
    entries = require(meta, "camera_path", path)
    if not isinstance(entries, list) or not entries:
        raise DataError(path, "'camera_path' must be a non-empty list of cameras")
    poses, focals = [], []
    for i, entry in enumerate(entries):
        where = f"camera_path[{i}]: "
        if not isinstance(entry, dict):
            raise DataError(path, f"{where}expected an object, got {type(entry).__name__}")
        poses.append(_read_pose(require(entry, "camera_to_world", path, where), path, where))
        fov = read_number(require(entry, "fov", path, where), path, f"{where}fov", positive=True)
        if fov >= 180:
            raise DataError(path, f"{where}fov must be below 180 degrees, got {fov:g}")
        focals.append(0.5 * height / math.tan(math.radians(fov) / 2))
    if "fps" in meta:
        fps = read_number(meta["fps"], path, "fps", positive=True)
    elif "seconds" in meta:
        fps = len(entries) / read_number(meta["seconds"], path, "seconds", positive=True)
    else:
        fps = 24.0
    n = len(entries)
    cameras = cameras_from_opengl(
        np.stack(poses), focals, focals, [width / 2] * n, [height / 2] * n, width, height
    )
    return cameras, fps


def _read_pose(value: object, path: Path, where: str) -> Float[np.ndarray, "4 4"]:
    """A flattened (row-major) or nested 4x4 camera-to-world matrix of finite numbers."""
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        matrix = None
    if matrix is None or matrix.size != 16 or matrix.ndim not in (1, 2):
        raise DataError(path, f"{where}camera_to_world must be 16 numbers (a 4x4 matrix)")
    if not np.isfinite(matrix).all():
        raise DataError(path, f"{where}camera_to_world has non-finite values (nan or inf)")
    return matrix.reshape(4, 4)


def _read_size(value: object, path: Path, what: str) -> int:
    number = read_number(value, path, what, positive=True)
    if number != int(number):
        raise DataError(path, f"{what} must be a whole number of pixels, got {value!r}")
    return int(number)


def write_nerfstudio_camera_path(path: Path, cameras: Cameras, fps: float) -> None:
    """Save a path as nerfstudio camera-path JSON (``ns-render camera-path`` and ``tf-render``
    read it). The format has one focal length and a centred principal point per camera: ``fy``
    is kept, ``fx`` and ``cx, cy`` are implied."""
    c2w_gl = cameras.c2w.double() @ OPENGL_TO_OPENCV.double()
    fovs = torch.rad2deg(2 * torch.atan(0.5 * cameras.height / cameras.fy.double()))
    meta = {
        "camera_type": "perspective",
        "render_width": cameras.width,
        "render_height": cameras.height,
        "fps": fps,
        "seconds": len(cameras) / fps,
        "camera_path": [
            {"camera_to_world": m.reshape(-1).tolist(), "fov": float(fov),
             "aspect": cameras.width / cameras.height}
            for m, fov in zip(c2w_gl, fovs, strict=True)
        ],
    }  # fmt: skip
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta, indent=2))
