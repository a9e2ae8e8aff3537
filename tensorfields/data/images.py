"""Image loading shared by the dataparsers: find, decode, composite, downscale, check sizes.

Every problem a user's files can cause raises :class:`DataError` naming the file and the problem.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch
from jaxtyping import Float
from PIL import Image
from torch import Tensor

from tensorfields.data.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


def check_downscale(downscale: float) -> float:
    """Return ``downscale`` as a float, or raise ValueError unless it is finite and > 0."""
    try:
        value = float(downscale)
    except (TypeError, ValueError):
        raise ValueError(f"downscale must be a number > 0, got {downscale!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"downscale must be > 0 (2 halves the image size), got {downscale!r}")
    return value


def check_background(background: Sequence[float]) -> tuple[float, float, float]:
    """Return ``background`` as an RGB triple, or raise ValueError."""
    values = tuple(float(c) for c in background)
    if len(values) != 3 or not all(math.isfinite(c) for c in values):
        raise ValueError(f"background must be 3 finite numbers (RGB), got {background!r}")
    return values  # type: ignore[return-value]


def resolve_image(root: Path, file_path: Any, json_path: Path, frame: int) -> Path:
    """The image file frame ``frame``'s ``file_path`` names (relative to ``root``; the extension
    may be left out, as in Blender's ``./train/r_0``)."""
    if not isinstance(file_path, str) or not file_path:
        raise DataError(
            json_path, f"frame {frame}: file_path must be a non-empty string, got {file_path!r}"
        )
    path = root / file_path
    for candidate in (path, *(path.with_name(path.name + s) for s in IMAGE_SUFFIXES)):
        if candidate.is_file():
            return candidate
    raise DataError(
        path, f"image file not found (file_path {file_path!r} of frame {frame} in {json_path})"
    )


def output_size(width: int, height: int, downscale: float) -> tuple[int, int]:
    """Image size after shrinking by ``downscale`` (2 -> half), at least 1x1 pixel."""
    return max(1, round(width / downscale)), max(1, round(height / downscale))


def _to_float_rgba(raw: np.ndarray, path: Path) -> np.ndarray:
    """Decoded pixels as float32 (h, w, 3 or 4) in [0, 1]."""
    if raw.ndim == 2:
        raw = raw[..., None]
    if raw.ndim != 3 or raw.shape[-1] not in (1, 2, 3, 4):
        raise DataError(path, f"unsupported image layout {tuple(raw.shape)} (expected RGB or RGBA)")
    if raw.shape[-1] in (1, 2):  # grey (+ alpha)
        raw = np.concatenate([raw[..., :1].repeat(3, axis=-1), raw[..., 1:]], axis=-1)
    if np.issubdtype(raw.dtype, np.integer):
        return raw.astype(np.float32) / np.float32(np.iinfo(raw.dtype).max)
    if raw.dtype == np.bool_:
        return raw.astype(np.float32)
    return np.clip(raw.astype(np.float32), 0.0, 1.0)


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average (PIL BOX filter) a float (h, w, 3) image to ``size`` = (width, height)."""
    channels = [
        np.asarray(Image.fromarray(rgb[..., c]).resize(size, Image.Resampling.BOX))
        for c in range(rgb.shape[-1])
    ]
    return np.stack(channels, axis=-1)


def load_image(
    path: Path, downscale: float = 1.0, background: Sequence[float] = (1.0, 1.0, 1.0)
) -> tuple[Float[np.ndarray, "h w 4"], tuple[int, int]]:
    """One image as float32 RGB in [0, 1] plus its alpha (1 for RGB files), and its stored size.

    RGBA images are composited as ``rgb * alpha + background * (1 - alpha)``; RGB images are used
    as they are. Then the image shrinks by ``downscale`` (area averaging; compositing first and
    averaging after equals averaging premultiplied colour).
    """
    try:
        raw = iio.imread(path, plugin="pillow")
    except FileNotFoundError:
        raise DataError(path, "image file not found") from None
    except Exception as error:  # decoders raise many types
        raise DataError(path, f"cannot decode image: {error}") from None
    pixels = _to_float_rgba(np.asarray(raw), path)
    if pixels.shape[-1] == 4:
        alpha = pixels[..., 3:]
        bg = np.asarray(background, dtype=np.float32)
        rgb = np.concatenate([pixels[..., :3] * alpha + bg * (1.0 - alpha), alpha], axis=-1)
    else:
        rgb = np.concatenate([pixels, np.ones_like(pixels[..., :1])], axis=-1)
    height, width = rgb.shape[:2]
    size = output_size(width, height, downscale)
    if size != (width, height):
        rgb = _resize(np.ascontiguousarray(rgb), size)
    return np.ascontiguousarray(rgb, dtype=np.float32), (width, height)


def load_images(
    paths: Sequence[Path],
    downscale: float = 1.0,
    background: Sequence[float] = (1.0, 1.0, 1.0),
    num_workers: int | None = None,
) -> tuple[Float[Tensor, "n h w 4"], tuple[int, int]]:
    """Decode, composite and downscale images in a thread pool into one float32 tensor.

    Returns composited RGB plus alpha (n, h, w, 4) and the (width, height) as stored, before
    downscaling. All images must
    have the same size, else DataError naming both files and both sizes.
    """
    downscale = check_downscale(downscale)
    background = check_background(background)
    if not paths:
        raise ValueError("no images to load")
    first, first_size = load_image(paths[0], downscale, background)
    out = np.empty((len(paths), *first.shape), dtype=np.float32)
    out[0] = first
    mismatched: dict[int, tuple[int, int]] = {}

    def work(index: int) -> None:
        image, size = load_image(paths[index], downscale, background)
        if size != first_size:
            mismatched[index] = size
        else:
            out[index] = image

    workers = num_workers or min(8, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, range(1, len(paths))))
    if mismatched:
        index = min(mismatched)
        (w, h), (w0, h0) = mismatched[index], first_size
        raise DataError(
            paths[index],
            f"image size {w}x{h} (WxH) differs from {w0}x{h0} of {paths[0]}; "
            "all images of a split must have the same size",
        )
    return torch.from_numpy(out), first_size
