"""Load a split of a scene folder in whichever layout it uses (Blender or nerfstudio)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tensorfields.data.blender import load_blender_split
from tensorfields.data.dataset import SceneSplit
from tensorfields.data.errors import DataError
from tensorfields.data.nerfstudio import load_nerfstudio_split


def detect_format(root: Path, split: str) -> str:
    """``"blender"`` if ``root/transforms_{split}.json`` exists, ``"nerfstudio"`` if
    ``root/transforms.json`` does, else DataError naming the folder and the files expected."""
    root = Path(root)
    if (root / f"transforms_{split}.json").is_file():
        return "blender"
    if (root / "transforms.json").is_file():
        return "nerfstudio"
    if not root.is_dir():
        raise DataError(root, "scene folder does not exist")
    found = sorted(p.name for p in root.glob("transforms*.json"))
    seen = f" (it has {', '.join(found)})" if found else ""
    raise DataError(
        root,
        f"no transforms_{split}.json (Blender layout) or transforms.json (nerfstudio layout) "
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
    ``background`` and shrunk by ``downscale``."""
    if detect_format(root, split) == "blender":
        return load_blender_split(Path(root), split, downscale, background)
    return load_nerfstudio_split(Path(root), split, downscale, background)
