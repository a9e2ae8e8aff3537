"""What the viewer draws around the render: the scene box, training cameras, the first view."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tensorfields.data.dataset import SceneSplit
from tensorfields.viewer.camera import c2w_to_pose, vertical_fov


def box_edges(aabb) -> np.ndarray:
    """The 12 edges of an axis-aligned box (xmin, ymin, zmin, xmax, ymax, zmax): (12, 2, 3)."""
    lo, hi = np.asarray(aabb[:3], dtype=np.float64), np.asarray(aabb[3:], dtype=np.float64)
    corners = np.array([[(hi if (i >> k) & 1 else lo)[k] for k in range(3)] for i in range(8)])
    edges = [(i, i | 1 << k) for i in range(8) for k in range(3) if not (i >> k) & 1]
    return np.stack([corners[[a, b]] for a, b in edges])


def spread(n_total: int, n: int) -> list[int]:
    """At most ``n`` indices spread evenly over ``range(n_total)``."""
    if n_total <= n:
        return list(range(n_total))
    return sorted({round(i * (n_total - 1) / max(n - 1, 1)) for i in range(n)})


def thumbnail(image: torch.Tensor, long_side: int) -> np.ndarray:
    """A uint8 copy of a float (h, w, 3) image, ``long_side`` pixels on its longer side."""
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    small = F.interpolate(image.permute(2, 0, 1)[None].float(), size=size, mode="area")[0]
    return (small.permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5).astype(np.uint8)


@dataclass
class InitialView:
    """Where a newly connected browser starts: a training camera's place, facing the box."""

    position: np.ndarray
    look_at: np.ndarray
    up: np.ndarray
    fov: float


def initial_view(aabb, split: SceneSplit | None) -> InitialView:
    """Up is the training cameras' mean image-up (-y in OpenCV), so orbiting feels level in any
    data set; the place is halfway between the first training camera and its nearest neighbour,
    a little farther out (no frustum in the way); without cameras, +z up and a corner view."""
    lo, hi = np.asarray(aabb[:3], dtype=np.float64), np.asarray(aabb[3:], dtype=np.float64)
    centre = (lo + hi) / 2
    if split is None or len(split) == 0:
        return InitialView(centre + (hi - lo) * [1.2, 1.2, 0.8], centre, np.eye(3)[2], 0.9)
    c2w = split.cameras.c2w.double().cpu().numpy()
    up = -c2w[:, :3, 1].mean(axis=0)
    up = up / np.linalg.norm(up) if np.linalg.norm(up) > 1e-6 else np.eye(3)[2]
    offsets = c2w[:, :3, 3] - centre
    gaps = np.linalg.norm(offsets - offsets[0], axis=1)
    gaps[gaps < 1e-6] = np.inf  # the camera itself, and any at the same place
    middle = offsets[0] if np.isinf(gaps.min()) else (offsets[0] + offsets[gaps.argmin()]) / 2
    scale = 1.15 * np.linalg.norm(offsets[0]) / max(np.linalg.norm(middle), 1e-9)
    return InitialView(centre + scale * middle, centre, up, vertical_fov(split.cameras, 0))


def add_scene_box(scene, aabb) -> None:
    scene.add_line_segments(
        "/scene_box",
        box_edges(aabb).astype(np.float32),
        colors=(230, 120, 30),
        thickness=2.0,
        thickness_units="screen",
    )


def add_training_frusta(scene, split: SceneSplit, aabb, max_count: int = 100):
    """Frusta of up to ``max_count`` training cameras (evenly picked), each with a small
    thumbnail of its image, under one node; returns that node (its ``visible`` hides them all)."""
    parent = scene.add_frame("/training_cameras", show_axes=False)
    cameras = split.cameras
    size = float(np.linalg.norm(np.subtract(aabb[3:], aabb[:3])))
    indices = spread(len(split), max_count)
    for i in indices:
        position, wxyz = c2w_to_pose(cameras.c2w[i].double().cpu().numpy())
        scene.add_camera_frustum(
            f"/training_cameras/{i:05d}",
            fov=vertical_fov(cameras, i),
            aspect=cameras.width / cameras.height,
            scale=0.04 * size,
            thickness=1.5,
            thickness_units="screen",
            color=(60, 60, 200),
            image=thumbnail(split.images[i].cpu(), 64),
            format="jpeg",
            wxyz=wxyz,
            position=position,
        )
    return parent
