"""Fixtures writing tiny synthetic datasets (Blender and nerfstudio layouts) into tmp_path.

Test modules get the helpers through the ``files`` fixture (not ``import conftest``, which is
ambiguous once other test folders have their own conftest.py).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest

ANGLE_X = 0.7


def pose_gl(x: float = 0.0, y: float = 0.0, z: float = 4.0) -> list[list[float]]:
    """OpenGL camera-to-world: identity rotation (looks down world -z) at (x, y, z)."""
    c2w = np.eye(4)
    c2w[:3, 3] = (x, y, z)
    return c2w.tolist()


def rgba_image(width: int = 8, height: int = 6, seed: int = 0) -> np.ndarray:
    """Known RGBA uint8 pixels: [0, 0] opaque red, [0, 1] transparent, [0, 2] half-alpha green."""
    image = np.random.default_rng(seed).integers(0, 256, (height, width, 4), dtype=np.uint8)
    image[0, 0] = (255, 0, 0, 255)
    image[0, 1] = (255, 0, 0, 0)
    image[0, 2] = (0, 255, 0, 51)  # alpha 0.2
    return image


def write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, pixels)


def write_json(path: Path, meta: object) -> None:
    path.write_text(json.dumps(meta, indent=2))


@pytest.fixture
def blender_scene(tmp_path: Path) -> Path:
    """A Blender-layout folder: train split of 3 RGBA 8x6 images, file paths without extension."""
    root = tmp_path / "scene"
    frames = []
    for i in range(3):
        write_png(root / "train" / f"r_{i}.png", rgba_image(seed=i))
        frames.append({"file_path": f"./train/r_{i}", "transform_matrix": pose_gl(x=float(i))})
    write_json(root / "transforms_train.json", {"camera_angle_x": ANGLE_X, "frames": frames})
    return root


def expected_focal(width: int, angle: float = ANGLE_X) -> float:
    return 0.5 * width / math.tan(0.5 * angle)


@pytest.fixture
def nerfstudio_scene(tmp_path: Path) -> Path:
    """A nerfstudio folder: 10 RGB 8x6 JPEG-free PNG frames listed out of order, global intrinsics,
    frame ``img_03`` overriding ``fl_x``."""
    root = tmp_path / "ns"
    frames = []
    for i in reversed(range(10)):
        pixels = np.full((6, 8, 3), 10 * i, dtype=np.uint8)
        write_png(root / "images" / f"img_{i:02d}.png", pixels)
        frame = {"file_path": f"images/img_{i:02d}.png", "transform_matrix": pose_gl(y=float(i))}
        if i == 3:
            frame["fl_x"] = 20.0
        frames.append(frame)
    meta = {"fl_x": 10.0, "fl_y": 11.0, "cx": 4.0, "cy": 3.0, "w": 8, "h": 6, "frames": frames}
    write_json(root / "transforms.json", meta)
    return root


@pytest.fixture
def files() -> SimpleNamespace:
    """The helpers above, for test modules."""
    return SimpleNamespace(
        ANGLE_X=ANGLE_X,
        pose_gl=pose_gl,
        rgba_image=rgba_image,
        write_png=write_png,
        write_json=write_json,
        expected_focal=expected_focal,
    )
