"""Find a scene's data folder on disk (or render it, for procedural scenes)."""

from __future__ import annotations

import os
from pathlib import Path

from tensorfields.data.errors import DataNotFoundError
from tensorfields.data.procedural import ensure_procedural_scene
from tensorfields.data.scenes import ScenePreset

MARKERS = ("transforms_train.json", "transforms.json")


def _has_data(folder: Path) -> bool:
    return any((folder / marker).is_file() for marker in MARKERS)


def find_scene_data(preset: ScenePreset, data: Path | None = None) -> Path:
    """The folder holding ``preset``'s data, looked for in this order:

    1. ``data`` if given (DataNotFoundError if it does not exist or holds no transforms file);
    2. procedural scenes: rendered once into the cache (see ``ensure_procedural_scene``);
    3. ``$TF_DATA_DIR/<dataset>/<scene>``;
    4. ``./data/<dataset>/<scene>`` (relative to the working directory).

    A candidate counts when it holds ``transforms_train.json`` or ``transforms.json``. If none
    does, DataNotFoundError lists every path tried and how to get the data.
    """
    if data is not None:
        data = Path(data).expanduser()
        if not data.is_dir():
            raise DataNotFoundError(f"data folder {data} does not exist (or is not a folder)")
        if not any(data.glob("transforms*.json")):
            raise DataNotFoundError(
                f"data folder {data} holds no transforms_<split>.json (Blender layout) "
                "or transforms.json (nerfstudio layout)"
            )
        return data
    if preset.dataset == "procedural":
        return ensure_procedural_scene(preset.name)

    tried: list[str] = []
    env = os.environ.get("TF_DATA_DIR")
    candidates = []
    if env:
        candidates.append((Path(env).expanduser() / preset.dataset / preset.name, "$TF_DATA_DIR"))
    else:
        tried.append(f"$TF_DATA_DIR/{preset.dataset}/{preset.name}: TF_DATA_DIR is not set")
    candidates.append((Path.cwd() / "data" / preset.dataset / preset.name, "./data"))
    for folder, origin in candidates:
        if _has_data(folder):
            return folder
        state = "exists, but holds no " + " or ".join(MARKERS) if folder.exists() else "missing"
        tried.append(f"{folder} (from {origin}): {state}")

    lines = [f"No data found for scene '{preset.name}'. Looked in:"]
    lines += [f"  - {entry}" for entry in tried]
    if preset.dataset == "nerf_synthetic":
        lines.append(
            f"Run `tf-download {preset.name}` to fetch it, or pass --data PATH to its folder."
        )
    else:
        lines.append("Pass --data PATH to the folder holding it.")
    lines.append(
        "Or run `tf-train --scene blocks`: it trains on the built-in procedural scene, "
        "no download needed."
    )
    raise DataNotFoundError("\n".join(lines))
