"""Dataparser for nerfstudio's layout: one ``transforms.json`` for all splits."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tensorfields.data.dataset import SceneSplit
from tensorfields.data.errors import DataError
from tensorfields.data.images import load_images, output_size, resolve_image
from tensorfields.data.transforms import (
    cameras_from_opengl,
    read_frames,
    read_json,
    read_number,
    read_transform,
    require,
)

SPLITS = ("train", "val", "test")
INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE")
DISTORTION = ("k1", "k2", "k3", "k4", "p1", "p2")
EVAL_EVERY = 8


def load_nerfstudio_split(
    root: Path,
    split: str,
    downscale: float = 1.0,
    background: Sequence[float] = (1.0, 1.0, 1.0),
) -> SceneSplit:
    """Load split ``split`` ("train", "val" or "test") of ``root/transforms.json``.

    - Intrinsics ``fl_x, fl_y, cx, cy, w, h`` (pixels) are read at the top level; a frame may
      override any of them. They are scaled to the downscaled image size. Lens distortion
      (``k1``... of the OPENCV model) is ignored, with a warning.
    - ``frames[i].file_path`` is relative to ``root``; ``transform_matrix`` is an OpenGL
      camera-to-world 4x4 (as nerfstudio writes it), returned in the OpenCV convention. Poses are
      used as they are: no re-centring or rescaling, so the caller's scene bounds must match them.
    - Frames are sorted by ``file_path`` (as nerfstudio does). Splits: if the JSON has
      ``train_filenames`` / ``val_filenames`` / ``test_filenames``, those lists choose the
      frames; otherwise every 8th frame (``i % 8 == 0``) is both ``val`` and ``test``, the rest
      ``train``.
    - Images (RGB, or RGBA composited on ``background``) must all match the declared ``w, h``.

    Names are the image file stems. Bad input raises :class:`DataError`.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; nerfstudio data has splits {', '.join(SPLITS)}")
    root = Path(root)
    json_path = root / "transforms.json"
    meta = read_json(json_path)
    model = meta.get("camera_model", "OPENCV")
    if model not in PINHOLE_MODELS:
        raise DataError(
            json_path,
            f"camera_model {model!r} is not supported (only pinhole: {', '.join(PINHOLE_MODELS)})",
        )
    frames = read_frames(meta, json_path)
    for i, frame in enumerate(frames):
        require(frame, "file_path", json_path, f"frame {i}: ")
    order = sorted(range(len(frames)), key=lambda i: str(frames[i]["file_path"]))
    chosen = _split_indices(meta, [frames[i] for i in order], split, root, json_path)
    indices = [order[k] for k in chosen]

    paths, poses, intrinsics = [], [], []
    for i in indices:
        frame, where = frames[i], f"frame {i}: "
        matrix = require(frame, "transform_matrix", json_path, where)
        poses.append(read_transform(matrix, json_path, where))
        paths.append(resolve_image(root, frame["file_path"], json_path, i))
        intrinsics.append(_intrinsics(meta, frame, json_path, where))
    _warn_distortion(meta, [frames[i] for i in indices], json_path)

    images, (width, height) = load_images(paths, downscale, background)
    for (*_, w, h), path in zip(intrinsics, paths, strict=True):
        if (round(w), round(h)) != (width, height):
            raise DataError(
                path,
                f"image size {width}x{height} (WxH) differs from w={w:g}, h={h:g} "
                f"declared in {json_path}",
            )
    new_width, new_height = output_size(width, height, downscale)
    sx, sy = new_width / width, new_height / height
    fx, fy, cx, cy, _, _ = np.asarray(intrinsics, dtype=np.float64).T
    cameras = cameras_from_opengl(
        np.stack(poses), fx * sx, fy * sy, cx * sx, cy * sy, new_width, new_height
    )
    return SceneSplit(
        cameras, images[..., :3].contiguous(), [p.stem for p in paths], images[..., 3].contiguous()
    )


def _split_indices(
    meta: dict[str, Any], frames: list[dict[str, Any]], split: str, root: Path, json_path: Path
) -> list[int]:
    """Indices into the sorted ``frames`` that form ``split``."""
    listed = [s for s in SPLITS if f"{s}_filenames" in meta]
    if not listed:
        if split == "train":
            indices = [i for i in range(len(frames)) if i % EVAL_EVERY != 0]
        else:
            indices = [i for i in range(len(frames)) if i % EVAL_EVERY == 0]
        if not indices:
            raise DataError(
                json_path,
                f"split has no frames: '{split}' gets every frame but each {EVAL_EVERY}th "
                f"(i % {EVAL_EVERY} == 0 goes to val/test), and there are only {len(frames)}",
            )
        return indices
    key = f"{split}_filenames"
    if key not in meta:
        raise DataError(json_path, f"missing key '{key}' (the file lists {listed[0]}_filenames)")
    names = meta[key]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise DataError(json_path, f"'{key}' must be a list of file paths")
    if not names:
        raise DataError(json_path, f"split has no frames ('{key}' is empty)")

    def norm(file_path: str) -> str:
        return os.path.normpath(root / file_path)

    by_path = {}
    for i, frame in enumerate(frames):
        by_path.setdefault(norm(frame["file_path"]), i)
        by_path.setdefault(os.path.splitext(norm(frame["file_path"]))[0], i)
    indices = []
    for name in names:
        index = by_path.get(norm(name), by_path.get(os.path.splitext(norm(name))[0]))
        if index is None:
            raise DataError(json_path, f"'{key}' names {name!r}, which is not a frame's file_path")
        indices.append(index)
    return indices


def _intrinsics(
    meta: dict[str, Any], frame: dict[str, Any], json_path: Path, where: str
) -> tuple[float, ...]:
    """(fl_x, fl_y, cx, cy, w, h) of one frame: its own values, else the top-level ones."""
    values = []
    for key in INTRINSICS:
        if key in frame:
            value = frame[key]
        elif key in meta:
            value = meta[key]
        else:
            raise DataError(
                json_path, f"{where}missing key '{key}' (neither in the frame nor at the top level)"
            )
        positive = key not in ("cx", "cy")
        values.append(read_number(value, json_path, f"{where}{key}", positive=positive))
    return tuple(values)


def _warn_distortion(meta: dict[str, Any], frames: list[dict[str, Any]], json_path: Path) -> None:
    """Warn once when lens distortion coefficients are present and non-zero (they are ignored)."""
    for source in (meta, *frames):
        coefficients = {k: source[k] for k in DISTORTION if k in source}
        if any(isinstance(v, int | float) and v != 0 for v in coefficients.values()):
            warnings.warn(
                f"{json_path}: lens distortion {coefficients} is ignored (pinhole model used)",
                stacklevel=3,
            )
            return
