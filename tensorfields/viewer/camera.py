"""Browser cameras to :class:`Cameras`, and back.

viser follows OpenCV, like tensorfields (checked in viser 1.1.1: ``CameraHandle.wxyz`` is "the R
in ``P_world = [R | t] p_camera``", and ``_update_wxyz`` builds R's columns as x right, y = -up,
z = the look direction; ``add_camera_frustum`` documents "+Z forward, +X right, +Y down"). So a
browser camera's ``wxyz`` and ``position`` are exactly the rotation and translation of our
camera-to-world matrix; no axis flips. ``fov`` is vertical, in radians; ``aspect`` is w / h.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from tensorfields.core.projection import quat_to_rotmat
from tensorfields.core.skinning import rotmat_to_quat
from tensorfields.data import camera_paths
from tensorfields.data.cameras import Cameras


def pose_to_c2w(position, wxyz) -> np.ndarray:
    """OpenCV camera-to-world 4x4 of a viser pose (position, wxyz)."""
    c2w = np.eye(4)
    c2w[:3, :3] = quat_to_rotmat(torch.as_tensor(wxyz, dtype=torch.float64)[None])[0].numpy()
    c2w[:3, 3] = np.asarray(position, dtype=np.float64)
    return c2w


def c2w_to_pose(c2w) -> tuple[np.ndarray, np.ndarray]:
    """The viser (position, wxyz) of an OpenCV camera-to-world matrix (for frusta)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    return c2w[:3, 3].copy(), rotmat_to_quat(torch.from_numpy(c2w[:3, :3].copy())).numpy()


def look_at(position, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV camera-to-world of one camera at ``position`` looking at ``target``, image up
    towards ``up``: :func:`~tensorfields.data.camera_paths.look_at` for numpy points."""

    def vector(value) -> torch.Tensor:
        return torch.as_tensor(np.asarray(value, dtype=np.float64))

    return camera_paths.look_at(vector(position)[None], vector(target), vector(up))[0].numpy()


def frame_size(long_side: int, aspect: float) -> tuple[int, int]:
    """(width, height) of a frame whose longer side is ``long_side`` at ``aspect`` = w / h."""
    long_side = max(int(long_side), 1)
    if aspect >= 1.0:
        return long_side, max(1, round(long_side / aspect))
    return max(1, round(long_side * aspect)), long_side


def browser_camera(position, wxyz, fov: float, aspect: float, long_side: int) -> Cameras:
    """One pinhole camera seeing what the browser shows, ``long_side`` pixels on its longer
    side (square pixels, principal point at the centre)."""
    width, height = frame_size(long_side, aspect)
    focal = height / (2.0 * math.tan(fov / 2.0))
    c2w = torch.from_numpy(pose_to_c2w(position, wxyz)).float()[None]

    def one(value: float) -> torch.Tensor:
        return torch.tensor([value], dtype=torch.float32)

    return Cameras(c2w, one(focal), one(focal), one(width / 2), one(height / 2), width, height)


def vertical_fov(cameras: Cameras, index: int) -> float:
    """Vertical field of view (radians) of camera ``index``, for frusta and initial views."""
    return 2.0 * math.atan(cameras.height / (2.0 * float(cameras.fy[index])))


def camera_view(camera) -> tuple | None:
    """(position, wxyz, fov, aspect) of a viser camera handle; None until the browser has sent
    a usable one."""
    try:
        view = (tuple(camera.position), tuple(camera.wxyz), float(camera.fov), camera.aspect)
    except (AssertionError, ZeroDivisionError):
        return None
    fov, aspect = view[2], view[3]
    return view if math.isfinite(aspect) and aspect > 0 and fov > 0 else None
