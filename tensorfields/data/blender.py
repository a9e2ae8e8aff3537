"""Dataparser for the Blender / NeRF-synthetic layout (``transforms_{split}.json`` + RGBA PNGs)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tensorfields.data.dataset import SceneSplit
from tensorfields.data.errors import DataError
from tensorfields.data.images import load_images, resolve_image
from tensorfields.data.transforms import (
    cameras_from_opengl,
    read_frames,
    read_json,
    read_number,
    read_transform,
    require,
)


def load_blender_split(
    root: Path,
    split: str,
    downscale: float = 1.0,
    background: Sequence[float] = (1.0, 1.0, 1.0),
) -> SceneSplit:
    """Load ``root/transforms_{split}.json`` and its images.

    - ``camera_angle_x`` gives the focal: ``0.5 * W / tan(0.5 * camera_angle_x)``, with ``W`` the
      width after downscaling; ``cx, cy = W / 2, H / 2``.
    - ``frames[i].file_path`` is relative to ``root``, with or without the ``.png`` extension.
    - ``frames[i].transform_matrix`` is an OpenGL camera-to-world 4x4; the cameras returned are
      in the OpenCV convention (see :mod:`tensorfields.data.cameras`).
    - RGBA images are composited on ``background``; ``downscale`` > 1 shrinks them (2 -> half).

    Names are the image file stems (``r_0``). Bad input raises :class:`DataError`.
    """
    root = Path(root)
    json_path = root / f"transforms_{split}.json"
    meta = read_json(json_path)
    angle = read_number(require(meta, "camera_angle_x", json_path), json_path, "camera_angle_x")
    if not 0 < angle < math.pi:
        raise DataError(json_path, f"camera_angle_x must be in (0, pi) radians, got {angle}")
    frames = read_frames(meta, json_path)
    poses, paths = [], []
    for i, frame in enumerate(frames):
        where = f"frame {i}: "
        file_path = require(frame, "file_path", json_path, where)
        matrix = require(frame, "transform_matrix", json_path, where)
        poses.append(read_transform(matrix, json_path, where))
        paths.append(resolve_image(root, file_path, json_path, i))

    images, _ = load_images(paths, downscale, background)
    n, height, width = images.shape[:3]
    focal = 0.5 * width / math.tan(0.5 * angle)
    cameras = cameras_from_opengl(
        np.stack(poses),
        np.full(n, focal),
        np.full(n, focal),
        np.full(n, width / 2),
        np.full(n, height / 2),
        width,
        height,
    )
    return SceneSplit(
        cameras, images[..., :3].contiguous(), [p.stem for p in paths], images[..., 3].contiguous()
    )
