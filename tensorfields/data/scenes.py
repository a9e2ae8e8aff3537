"""Scene presets: bounds, near/far, background, data set and per-method overrides of a scene.

Presets are YAML files ``<name>.yaml`` in ``$TF_SCENES_DIR`` if set, else the repository's
``scenes/`` folder. They are read with ``yaml.safe_load`` and checked field by field.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from tensorfields.data.errors import DataError

DATASETS = ("nerf_synthetic", "procedural", "zju_mocap")
FORMATS = ("blender", "nerfstudio", "humans", "auto")


@dataclass
class ScenePreset:
    """A scene's settings. ``aabb`` is (xmin, ymin, zmin, xmax, ymax, zmax) in world units;
    ``overrides`` maps a method name (e.g. ``"tensorf-vm"``) to config overrides for it;
    ``format`` is the data layout (``"auto"`` detects it)."""

    name: str
    aabb: list[float]
    near: float
    far: float
    background: list[float]
    dataset: str
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    format: str = "auto"


def presets_dir() -> Path:
    """``$TF_SCENES_DIR`` if set, else the repository's ``scenes/`` folder."""
    env = os.environ.get("TF_SCENES_DIR")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2] / "scenes"


def list_presets() -> list[str]:
    """Names of the available presets, sorted."""
    folder = presets_dir()
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def load_preset(name: str) -> ScenePreset:
    """Read and check preset ``name``; DataError listing the available ones if unknown."""
    folder = presets_dir()
    path = folder / f"{name}.yaml"
    if not name or Path(name).name != name or not path.is_file():
        available = ", ".join(list_presets()) or f"none (no *.yaml files in {folder})"
        raise DataError(
            folder, f"unknown scene {name!r} (no {name}.yaml here); available scenes: {available}"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise DataError(path, f"malformed YAML{where}: {problem}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(path, f"cannot read file: {error}") from None
    return _check(raw, name, path)


def _check(raw: Any, name: str, path: Path) -> ScenePreset:
    """Validate a parsed preset mapping and build the dataclass."""
    if not isinstance(raw, dict):
        raise DataError(path, f"expected a mapping of preset fields, got {type(raw).__name__}")
    known = {f.name for f in fields(ScenePreset)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise DataError(path, f"unknown field(s) {unknown}; allowed: {sorted(known)}")
    if raw.get("name", name) != name:
        raise DataError(path, f"name {raw['name']!r} does not match the file name {name!r}")
    for key in ("aabb", "near", "far", "background", "dataset"):
        if key not in raw:
            raise DataError(path, f"missing field '{key}'")

    aabb = _numbers(raw["aabb"], 6, "aabb", path)
    if any(lo >= hi for lo, hi in zip(aabb[:3], aabb[3:], strict=True)):
        raise DataError(
            path, f"aabb must be [xmin, ymin, zmin, xmax, ymax, zmax] with min < max, got {aabb}"
        )
    near, far = (_numbers(raw[key], None, key, path)[0] for key in ("near", "far"))
    if not 0 <= near < far:
        raise DataError(path, f"need 0 <= near < far, got near={near}, far={far}")
    background = _numbers(raw["background"], 3, "background", path)
    if not all(0 <= c <= 1 for c in background):
        raise DataError(path, f"background must be RGB in [0, 1], got {background}")
    dataset = raw["dataset"]
    if dataset not in DATASETS:
        raise DataError(path, f"dataset must be one of {', '.join(DATASETS)}, got {dataset!r}")
    fmt = raw.get("format", "auto")
    if fmt not in FORMATS:
        raise DataError(path, f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict) or not all(
        isinstance(k, str) and isinstance(v, dict) for k, v in overrides.items()
    ):
        raise DataError(path, "overrides must map method names to mappings of config values")
    return ScenePreset(name, aabb, near, far, background, dataset, overrides, fmt)


def _numbers(value: Any, count: int | None, what: str, path: Path) -> list[float]:
    """``value`` as a list of ``count`` finite floats (``None``: one number), else DataError."""
    values = [value] if count is None else value
    ok = isinstance(values, list) and len(values) == (count or 1)
    ok = ok and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    if not ok or not all(math.isfinite(v) for v in values):
        expected = "a finite number" if count is None else f"a list of {count} finite numbers"
        raise DataError(path, f"{what} must be {expected}, got {value!r}")
    return [float(v) for v in values]
