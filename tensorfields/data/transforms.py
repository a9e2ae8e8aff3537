"""Reading transforms JSON files (Blender / nerfstudio): values checked, clear errors.

Every problem raises :class:`DataError` naming the JSON file and what is wrong (with the frame).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jaxtyping import Float

from tensorfields.data.cameras import Cameras, opengl_to_opencv
from tensorfields.data.errors import DataError


def read_json(path: Path) -> dict[str, Any]:
    """Parse a JSON file holding an object; DataError if missing, malformed or not an object."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(path, f"cannot read file: {error}") from None
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(
            path, f"malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    if not isinstance(meta, dict):
        raise DataError(path, f"expected a JSON object at the top level, got {type(meta).__name__}")
    return meta


def require(meta: dict[str, Any], key: str, path: Path, where: str = "") -> Any:
    """``meta[key]``, or DataError "missing key" (``where`` says e.g. which frame)."""
    if key not in meta:
        raise DataError(path, f"{where}missing key '{key}'")
    return meta[key]


def read_number(value: Any, path: Path, what: str, positive: bool = False) -> float:
    """``value`` as a finite float (and > 0 if ``positive``), else DataError naming ``what``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(path, f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise DataError(path, f"{what} must be finite, got {value!r}")
    if positive and number <= 0:
        raise DataError(path, f"{what} must be > 0, got {value!r}")
    return number


def read_frames(meta: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """The non-empty ``frames`` list of a transforms file, each frame an object."""
    frames = require(meta, "frames", path)
    if not isinstance(frames, list):
        raise DataError(path, f"'frames' must be a list, got {type(frames).__name__}")
    if not frames:
        raise DataError(path, "split has no frames ('frames' is empty)")
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise DataError(path, f"frame {i}: expected an object, got {type(frame).__name__}")
    return frames


def read_transform(value: Any, path: Path, where: str) -> Float[np.ndarray, "4 4"]:
    """A 4x4 finite camera-to-world matrix (float64), else DataError."""
    try:
        matrix = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(path, f"{where}transform_matrix must be a 4x4 array of numbers") from None
    if matrix.shape != (4, 4):
        raise DataError(
            path, f"{where}transform_matrix must be 4x4, got shape {tuple(matrix.shape)}"
        )
    if not np.isfinite(matrix).all():
        raise DataError(path, f"{where}transform_matrix has non-finite values (nan or inf)")
    return matrix


def cameras_from_opengl(
    c2w_opengl: Float[np.ndarray, "n 4 4"],
    fx: Float[np.ndarray, " n"],
    fy: Float[np.ndarray, " n"],
    cx: Float[np.ndarray, " n"],
    cy: Float[np.ndarray, " n"],
    width: int,
    height: int,
) -> Cameras:
    """Float32 :class:`Cameras` (OpenCV convention) from OpenGL camera-to-world (n, 4, 4) poses."""
    c2w = opengl_to_opencv(torch.from_numpy(np.asarray(c2w_opengl, dtype=np.float64)))

    def vec(values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=np.float64), dtype=torch.float32)

    return Cameras(c2w.float(), vec(fx), vec(fy), vec(cx), vec(cy), width, height)
