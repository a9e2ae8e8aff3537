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

from tensorfields.data.cameras import Cameras


def quaternion_to_matrix(wxyz) -> np.ndarray:
    """Rotation matrix of a unit quaternion (w, x, y, z); the quaternion is normalised first."""
    w, x, y, z = np.asarray(wxyz, dtype=np.float64) / np.linalg.norm(wxyz)
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )


def matrix_to_quaternion(rotation) -> np.ndarray:
    """Unit quaternion (w, x, y, z, with w >= 0) of a rotation matrix (Shepperd's method: divide
    by the largest of the four candidate terms, so it stays accurate near 180 degrees)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    candidates = [trace, m[0, 0], m[1, 1], m[2, 2]]
    k = int(np.argmax(candidates))
    if k == 0:
        s = 2.0 * math.sqrt(1.0 + trace)
        q = [s / 4, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif k == 1:
        s = 2.0 * math.sqrt(max(1.0 + m[0, 0] - m[1, 1] - m[2, 2], 1e-12))
        q = [(m[2, 1] - m[1, 2]) / s, s / 4, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif k == 2:
        s = 2.0 * math.sqrt(max(1.0 + m[1, 1] - m[0, 0] - m[2, 2], 1e-12))
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, s / 4, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * math.sqrt(max(1.0 + m[2, 2] - m[0, 0] - m[1, 1], 1e-12))
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, s / 4]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def pose_to_c2w(position, wxyz) -> np.ndarray:
    """OpenCV camera-to-world 4x4 of a viser pose (position, wxyz)."""
    c2w = np.eye(4)
    c2w[:3, :3] = quaternion_to_matrix(wxyz)
    c2w[:3, 3] = np.asarray(position, dtype=np.float64)
    return c2w


def c2w_to_pose(c2w) -> tuple[np.ndarray, np.ndarray]:
    """The viser (position, wxyz) of an OpenCV camera-to-world matrix (for frusta)."""
    c2w = np.asarray(c2w, dtype=np.float64)
    return c2w[:3, 3].copy(), matrix_to_quaternion(c2w[:3, :3])


def look_at(position, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """OpenCV camera-to-world of a camera at ``position`` looking at ``target``, image up
    towards ``up``."""
    position = np.asarray(position, dtype=np.float64)
    z = np.asarray(target, dtype=np.float64) - position
    z /= np.linalg.norm(z)
    x = np.cross(z, np.asarray(up, dtype=np.float64))
    if np.linalg.norm(x) < 1e-9:  # looking along ``up``: any right vector will do
        x = np.cross(z, np.eye(3)[np.argmin(np.abs(z))])
    x /= np.linalg.norm(x)
    c2w = np.eye(4)
    c2w[:3, :3] = np.stack([x, np.cross(z, x), z], axis=1)
    c2w[:3, 3] = position
    return c2w


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
