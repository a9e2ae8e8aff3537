"""Find a scene's data folder on disk (or render it, for procedural scenes)."""

from __future__ import annotations

import os
from pathlib import Path

from tensorfields.data.errors import DataNotFoundError
from tensorfields.data.humans.generate import ensure_humans_dataset
from tensorfields.data.loader import has_scene_data
from tensorfields.data.procedural import ensure_procedural_scene
from tensorfields.data.scenes import ScenePreset

MARKERS = ("transforms_train.json", "transforms.json", "dataset.json", "ZJU-MoCap subjects")


def find_scene_data(preset: ScenePreset, data: Path | None = None) -> Path:
    """The folder holding ``preset``'s data, looked for in this order:

    1. ``data`` if given (DataNotFoundError if it does not exist or holds no transforms file
       or humans ``dataset.json``);
    2. procedural scenes: rendered once into the cache (``format: humans`` presets with
       ``ensure_humans_dataset``, the others with ``ensure_procedural_scene``);
    3. ``$TF_DATA_DIR/<dataset>/<scene>``;
    4. ``./data/<dataset>/<scene>`` (relative to the working directory).

    A candidate counts when :func:`has_scene_data` says so (one of :data:`MARKERS`). If none
    does, DataNotFoundError lists every path tried and how to get the data.
    """
    if data is not None:
        data = Path(data).expanduser()
        if not data.is_dir():
            raise DataNotFoundError(f"data folder {data} does not exist (or is not a folder)")
        if not any(data.glob("transforms*.json")) and not has_scene_data(data):
            raise DataNotFoundError(
                f"data folder {data} holds no transforms_<split>.json (Blender layout), "
                "transforms.json (nerfstudio layout), dataset.json (humans layout) or "
                "ZJU-MoCap subject folders (cam_params.json + models/)"
            )
        return data
    if preset.dataset == "procedural":
        if preset.format == "humans":
            return ensure_humans_dataset()
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
        if has_scene_data(folder):
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
