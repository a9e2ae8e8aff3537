"""Render the procedural humans dataset to disk (deterministic from a seed), or reuse a cache.

Each identity is filmed by one fixed camera while it walks in place and turns once about the
vertical axis (a monocular video, like ZJU-MoCap or PeopleSnapshot). The frames of that motion are
split into train / val / test (held out, in distribution); ``test_ood`` holds poses far outside
the training motion. See :mod:`tensorfields.data.humans.layout` for the files written.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch
from jaxtyping import Float

from tensorfields.core.skinning import axis_angle_to_matrix, forward_kinematics
from tensorfields.data.atomic_folder import write_folder_atomically
from tensorfields.data.humans.characters import Identity, body_primitives, sample_identities
from tensorfields.data.humans.layout import FORMAT, VERSION, read_dataset_json
from tensorfields.data.humans.motions import (
    MotionStyle,
    ground_translation,
    matrix_to_axis_angle,
    ood_poses,
    split_sequence,
    walking_turn,
)
from tensorfields.data.humans.raycast import render_rgba
from tensorfields.data.humans.skeleton import JOINT_NAMES, PARENTS, rest_joints
from tensorfields.data.procedural import default_cache_dir

GENERATOR_VERSION = 1
CAMERA_DISTANCE = 4.5
"""Metres from the camera to the vertical axis the bodies turn about."""
CAMERA_HEIGHT = 1.1
VIEW_HALF_EXTENT = 1.35
"""Half the width (and height) of the view at the turning axis, in metres: room for arms
raised overhead (up to 2.3 m) and for limbs reaching 1 m towards the camera."""


@dataclass(frozen=True)
class HumansParams:
    """Everything the rendered dataset depends on (stored in ``dataset.json``)."""

    seed: int = 0
    n_identities: int = 6
    resolution: int = 128
    n_train_frames: int = 60
    n_test_frames: int = 10
    n_ood_frames: int = 10
    n_val_frames: int = 2
    supersample: int = 2
    generator_version: int = GENERATOR_VERSION

    def __post_init__(self) -> None:
        for key, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{key} must be an integer, got {value!r}")
            least = 0 if key in ("seed", "n_test_frames", "n_ood_frames", "n_val_frames") else 1
            if value < least:
                raise ValueError(f"{key} must be >= {least}, got {value}")


def fixed_camera(resolution: int) -> tuple[Float[np.ndarray, "4 4"], tuple[float, ...]]:
    """OpenCV camera-to-world and (fx, fy, cx, cy) of the fixed camera: at
    ``(0, -CAMERA_DISTANCE, CAMERA_HEIGHT)``, looking horizontally along +y at the turning axis
    (a body at turn 0 faces it), square ``resolution`` pixels."""
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2] = (1, 0, 0), (0, 0, -1), (0, 1, 0)
    c2w[:3, 3] = (0.0, -CAMERA_DISTANCE, CAMERA_HEIGHT)
    focal = 0.5 * resolution * CAMERA_DISTANCE / VIEW_HALF_EXTENT
    return c2w, (focal, focal, resolution / 2, resolution / 2)


def _poses(
    identity: Identity, index: int, params: HumansParams
) -> dict[str, tuple[np.ndarray, list[int], list[str]]]:
    """Per split: local rotations (n, J, 3, 3), frame numbers and motion kinds."""
    rng = np.random.default_rng([params.seed, 1, index])
    style = MotionStyle.sample(rng)
    total = params.n_train_frames + params.n_test_frames + params.n_val_frames
    walk = walking_turn(total, style)
    splits = {}
    for split, frames in split_sequence(
        params.n_train_frames, params.n_test_frames, params.n_val_frames
    ).items():
        splits[split] = (walk[frames], frames.tolist(), ["walk"] * len(frames))
    ood, kinds = ood_poses(params.n_ood_frames, style, rng)
    splits["test_ood"] = (ood, list(range(params.n_ood_frames)), kinds)
    return splits


def _articulate(
    rotations: Float[np.ndarray, "n J 3 3"], rest: Float[np.ndarray, "J 3"]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axis-angle poses and root translations as stored (rounded), and the bone transforms
    computed from exactly those stored values."""
    pose = np.round(matrix_to_axis_angle(rotations), 8)
    local = axis_angle_to_matrix(torch.from_numpy(pose))
    translation = np.round(ground_translation(local.numpy(), rest), 8)
    rest_t = torch.from_numpy(rest).expand(len(pose), -1, -1)
    transforms, _ = forward_kinematics(PARENTS, rest_t, local, torch.from_numpy(translation))
    return pose, translation, transforms.numpy()


def _render_dataset(params: HumansParams, out: Path) -> None:
    """Write the dataset into the empty folder ``out``."""
    c2w, intrinsics = fixed_camera(params.resolution)
    camera = {"c2w": c2w.tolist(), **dict(zip(("fx", "fy", "cx", "cy"), intrinsics, strict=True))}
    size = (params.resolution, params.resolution, params.supersample)
    identities: list[dict[str, Any]] = []
    splits: dict[str, list[dict[str, Any]]] = {s: [] for s in ("train", "val", "test", "test_ood")}
    for index, identity in enumerate(sample_identities(params.seed, params.n_identities)):
        rest = np.round(rest_joints(identity.proportions), 8)
        identities.append({**asdict(identity), "rest_joints": rest.tolist()})
        primitives = body_primitives(identity)
        for split, (rotations, frames, kinds) in _poses(identity, index, params).items():
            if not frames:
                continue
            pose, translation, transforms = _articulate(rotations, rest)
            (out / identity.name / split).mkdir(parents=True)
            for k, frame in enumerate(frames):
                rgba = render_rgba(identity, primitives, transforms[k], c2w, intrinsics, *size)
                file = f"{identity.name}/{split}/{frame:06d}.png"
                iio.imwrite(out / file, np.round(rgba * 255).astype(np.uint8))
                record = {"file": file, "identity": index, "frame": frame, "kind": kinds[k]}
                splits[split].append(
                    {
                        **record,
                        **camera,
                        "pose": pose[k].tolist(),
                        "translation": translation[k].tolist(),
                        "bone_transforms": np.round(transforms[k], 9).tolist(),
                    }
                )
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "params": asdict(params),
        "skeleton": {"names": list(JOINT_NAMES), "parents": list(PARENTS)},
        "identities": identities,
        "splits": splits,
    }
    (out / "dataset.json").write_text(json.dumps(meta))


def _is_complete(folder: Path, params: HumansParams) -> bool:
    """Whether ``folder`` holds a finished dataset rendered with exactly ``params``."""
    try:
        meta = read_dataset_json(folder)
    except ValueError:
        return False
    if meta.get("params") != asdict(params) or not isinstance(meta.get("splits"), dict):
        return False
    files = [f.get("file") for frames in meta["splits"].values() for f in frames]
    return all(isinstance(f, str) and (folder / f).is_file() for f in files)


def _render_into(folder: Path, params: HumansParams) -> None:
    """Render into ``folder`` atomically (see :func:`write_folder_atomically`)."""
    n = params.n_train_frames + params.n_test_frames + params.n_val_frames + params.n_ood_frames
    print(
        f"Rendering humans dataset ({params.n_identities} identities x {n} frames, "
        f"{params.resolution}x{params.resolution}) into {folder}",
        file=sys.stderr,
        flush=True,
    )
    start = time.perf_counter()
    write_folder_atomically(
        folder, lambda tmp: _render_dataset(params, tmp), lambda: _is_complete(folder, params)
    )
    print(f"  done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)


def make_humans_dataset(out: Path, overwrite: bool = False, **params: Any) -> Path:
    """Render the dataset into ``out`` (keyword ``params``: the fields of :class:`HumansParams`,
    e.g. ``seed``, ``n_identities``, ``resolution``, ``n_train_frames``). FileExistsError if
    ``out`` is a non-empty folder, unless ``overwrite``."""
    settings = HumansParams(**params)
    out = Path(out).expanduser()
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} already exists and is not empty (overwrite=True replaces it)")
    _render_into(out, settings)
    return out


def ensure_humans_dataset(cache_dir: Path | None = None, **params: Any) -> Path:
    """Folder holding the dataset for ``params`` (see :func:`make_humans_dataset`), rendered
    only when ``cache_dir`` (default ``default_cache_dir("humans")``) does not already hold it
    with the same parameters and generator version."""
    settings = HumansParams(**params)
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir("humans")
    if not _is_complete(folder, settings):
        _render_into(folder, settings)
    return folder
