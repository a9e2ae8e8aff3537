"""On-disk layout of the humans dataset, and its reader.

``<root>/dataset.json``::

    {"format": "tensorfields-humans", "version": 1,
     "params": {...generator parameters...},
     "skeleton": {"names": [J names], "parents": [J ints, -1 for the root]},
     "identities": [{"name": "id00", "rest_joints": J x 3, ...descriptive fields}, ...],
     "splits": {"train" | "val" | "test" | "test_ood": [
         {"file": "id00/train/000012.png", "identity": 0, "frame": 12, "kind": "walk",
          "c2w": 4 x 4 OpenCV camera-to-world, "fx": .., "fy": .., "cx": .., "cy": ..,
          "pose": J x 3 axis-angle, "translation": 3, "bone_transforms": J x 4 x 4}, ...]}}

Images are RGBA PNGs whose alpha is the body mask. ``test`` holds held-out frames of the
training motion (in distribution), ``test_ood`` poses outside its range.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from tensorfields.data.cameras import Cameras
from tensorfields.data.errors import DataError
from tensorfields.data.frames import FrameSplit, Skeleton
from tensorfields.data.images import load_images, resolve_image
from tensorfields.data.transforms import read_json, read_number, require

FORMAT = "tensorfields-humans"
VERSION = 1
SPLITS = ("train", "val", "test", "test_ood")


def read_dataset_json(root: Path) -> dict[str, Any]:
    """``root/dataset.json`` parsed, its format tag and version checked (else DataError)."""
    path = Path(root) / "dataset.json"
    meta = read_json(path)
    if meta.get("format") != FORMAT:
        raise DataError(path, f"format must be {FORMAT!r}, got {meta.get('format')!r}")
    if meta.get("version") != VERSION:
        raise DataError(
            path, f"unsupported version {meta.get('version')!r} (this reader: {VERSION})"
        )
    return meta


def _array(value: Any, shape: tuple[int, ...], path: Path, what: str) -> np.ndarray:
    """``value`` as a finite float64 array of ``shape``, else DataError naming ``what``."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(path, f"{what} must be an array of numbers of shape {shape}") from None
    if array.shape != shape:
        raise DataError(path, f"{what} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise DataError(path, f"{what} has non-finite values (nan or inf)")
    return array


def _skeleton(meta: dict[str, Any], path: Path) -> Skeleton:
    raw = require(meta, "skeleton", path)
    names = require(raw, "names", path, "skeleton: ") if isinstance(raw, dict) else None
    parents = require(raw, "parents", path, "skeleton: ") if isinstance(raw, dict) else None
    ok = isinstance(names, list) and all(isinstance(n, str) for n in names)
    ok = ok and isinstance(parents, list) and all(type(p) is int for p in parents)
    if not ok:
        raise DataError(path, "skeleton must hold 'names' (strings) and 'parents' (integers)")
    try:
        return Skeleton(tuple(names), tuple(parents))  # type: ignore[arg-type]
    except ValueError as error:
        raise DataError(path, f"bad skeleton: {error}") from None


def _identities(meta: dict[str, Any], path: Path, joints: int) -> tuple[list[str], np.ndarray]:
    raw = require(meta, "identities", path)
    if not isinstance(raw, list) or not raw or not all(isinstance(i, dict) for i in raw):
        raise DataError(path, "'identities' must be a non-empty list of objects")
    names, rests = [], []
    for k, person in enumerate(raw):
        name = require(person, "name", path, f"identity {k}: ")
        if not isinstance(name, str):
            raise DataError(path, f"identity {k}: name must be a string, got {name!r}")
        names.append(name)
        rests.append(
            _array(
                require(person, "rest_joints", path, f"identity {k}: "),
                (joints, 3),
                path,
                f"identity {k}: rest_joints",
            )
        )
    return names, np.stack(rests)


class _Frame(NamedTuple):
    image: Path
    identity: int
    pose: np.ndarray
    bone_transforms: np.ndarray
    c2w: np.ndarray
    intrinsics: list[float]


def _read_frame(frame: Any, i: int, where: str, root: Path, joints: int, ids: int) -> _Frame:
    """One entry of a split, every field checked (DataError names dataset.json and the frame)."""
    path = root / "dataset.json"
    if not isinstance(frame, dict):
        raise DataError(path, f"{where}expected an object, got {type(frame).__name__}")

    def field(key: str, shape: tuple[int, ...]) -> np.ndarray:
        return _array(require(frame, key, path, where), shape, path, f"{where}{key}")

    index = require(frame, "identity", path, where)
    if type(index) is not int or not 0 <= index < ids:
        raise DataError(path, f"{where}identity must be an index below {ids}, got {index!r}")
    field("translation", (3,))
    intrinsics = [
        read_number(require(frame, k, path, where), path, f"{where}{k}", positive=k[0] == "f")
        for k in ("fx", "fy", "cx", "cy")
    ]
    return _Frame(
        image=resolve_image(root, require(frame, "file", path, where), path, i),
        identity=index,
        pose=field("pose", (joints, 3)),
        bone_transforms=field("bone_transforms", (joints, 4, 4)),
        c2w=field("c2w", (4, 4)),
        intrinsics=intrinsics,
    )


def load_humans_split(
    root: Path,
    split: str,
    downscale: float = 1.0,
    background: Sequence[float] = (0.0, 0.0, 0.0),
) -> FrameSplit:
    """Split ``split`` (``train``, ``val``, ``test`` or ``test_ood``) of the humans dataset in
    ``root``: images composited on ``background`` and shrunk by ``downscale``, ``alphas`` the
    masks, cameras (OpenCV) scaled to match. Bad or missing files raise :class:`DataError`."""
    root = Path(root)
    path = root / "dataset.json"
    meta = read_dataset_json(root)
    skeleton = _skeleton(meta, path)
    identity_names, rest = _identities(meta, path, len(skeleton))
    splits = require(meta, "splits", path)
    if not isinstance(splits, dict) or split not in splits:
        found = ", ".join(sorted(splits)) if isinstance(splits, dict) else "none"
        raise DataError(path, f"no split {split!r} (splits here: {found})")
    if not isinstance(splits[split], list) or not splits[split]:
        raise DataError(path, f"split {split!r} has no frames")
    frames = [
        _read_frame(f, i, f"split {split!r}, frame {i}: ", root, len(skeleton), len(rest))
        for i, f in enumerate(splits[split])
    ]
    images, (stored_w, stored_h) = load_images([f.image for f in frames], downscale, background)
    height, width = images.shape[1:3]
    intrinsics = torch.tensor([f.intrinsics for f in frames], dtype=torch.float64)
    intrinsics *= torch.tensor([width / stored_w, height / stored_h] * 2, dtype=torch.float64)
    fx, fy, cx, cy = intrinsics.float().unbind(1)
    c2w = torch.tensor(np.stack([f.c2w for f in frames]), dtype=torch.float32)

    def stack(name: str) -> torch.Tensor:
        return torch.tensor(np.stack([getattr(f, name) for f in frames]), dtype=torch.float32)

    return FrameSplit(
        cameras=Cameras(c2w, fx, fy, cx, cy, width, height),
        images=images[..., :3].contiguous(),
        # Flat names ("id00_test_000012"): outputs are written per view name, identities apart.
        names=[
            f.image.relative_to(root).with_suffix("").as_posix().replace("/", "_") for f in frames
        ],
        alphas=images[..., 3].contiguous(),
        identity=torch.tensor([f.identity for f in frames], dtype=torch.long),
        pose=stack("pose"),
        bone_transforms=stack("bone_transforms"),
        identity_names=identity_names,
        rest_joints=torch.tensor(rest, dtype=torch.float32),
        skeleton=skeleton,
    )
