"""Load a split of a scene folder in whichever layout it uses (Blender, nerfstudio, humans,
ZJU-MoCap)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tensorfields.data.blender import load_blender_split
from tensorfields.data.dataset import SceneSplit
from tensorfields.data.errors import DataError
from tensorfields.data.humans.layout import load_humans_split
from tensorfields.data.nerfstudio import load_nerfstudio_split
from tensorfields.data.zju_mocap import is_zju_mocap_subject, load_zju_mocap


def zju_mocap_subjects(root: Path) -> list[Path]:
    """``root`` itself if it is a ZJU-MoCap subject folder, else its subject subfolders."""
    root = Path(root)
    if is_zju_mocap_subject(root):
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and is_zju_mocap_subject(p))


def has_scene_data(root: Path) -> bool:
    """Whether ``root`` holds a scene in one of the layouts :func:`load_split` reads."""
    root = Path(root)
    markers = ("transforms_train.json", "transforms.json", "dataset.json")
    return any((root / m).is_file() for m in markers) or bool(zju_mocap_subjects(root))


def detect_format(root: Path, split: str) -> str:
    """``"blender"`` if ``root/transforms_{split}.json`` exists, ``"nerfstudio"`` if
    ``root/transforms.json`` does, ``"humans"`` if ``root/dataset.json`` does, ``"zju_mocap"``
    for a ZJU-MoCap subject folder (or a folder of them), else DataError naming the folder and
    the files expected."""
    root = Path(root)
    if (root / f"transforms_{split}.json").is_file():
        return "blender"
    if (root / "transforms.json").is_file():
        return "nerfstudio"
    if (root / "dataset.json").is_file():
        return "humans"
    if zju_mocap_subjects(root):
        return "zju_mocap"
    if not root.is_dir():
        raise DataError(root, "scene folder does not exist")
    found = sorted(p.name for p in root.glob("transforms*.json"))
    seen = f" (it has {', '.join(found)})" if found else ""
    raise DataError(
        root,
        f"no transforms_{split}.json (Blender layout), transforms.json (nerfstudio layout) "
        f", dataset.json (humans layout) or ZJU-MoCap subjects (cam_params.json + models/) "
        f"in this folder{seen}",
    )


def load_split(
    root: Path,
    split: str,
    downscale: float = 1.0,
    background: Sequence[float] = (1.0, 1.0, 1.0),
) -> SceneSplit:
    """Load split ``split`` of the scene in ``root``, detecting its layout (see
    :func:`detect_format`). Cameras come back in the OpenCV convention, images composited on
    ``background`` and shrunk by ``downscale``. The humans and ZJU-MoCap layouts give a
    :class:`~tensorfields.data.frames.FrameSplit` (a SceneSplit with poses and identities; one
    identity per ZJU-MoCap subject folder)."""
    fmt = detect_format(root, split)
    if fmt == "blender":
        return load_blender_split(Path(root), split, downscale, background)
    if fmt == "humans":
        return load_humans_split(Path(root), split, downscale, background)
    if fmt == "zju_mocap":
        subjects = zju_mocap_subjects(root)
        return load_zju_mocap(subjects, split, downscale=downscale, background=background)
    return load_nerfstudio_split(Path(root), split, downscale, background)
