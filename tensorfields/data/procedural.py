"""The built-in procedural scene ``blocks``: coloured boxes and cylinders, ray cast analytically.

It needs no download: :func:`ensure_procedural_scene` renders it once (a few seconds) in the
Blender layout (``transforms_{train,val,test}.json`` + RGBA PNGs, OpenGL poses, z up) and reuses
the cached copy afterwards.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import imageio.v3 as iio
import numpy as np
from jaxtyping import Float

from tensorfields.data.atomic_folder import write_folder_atomically

GENERATOR_VERSION = 1
CAMERA_ANGLE_X = 0.8
CAMERA_RADIUS = 4.0
LIGHT_DIR = np.array([0.4, -0.5, 0.77]) / np.linalg.norm([0.4, -0.5, 0.77])
AMBIENT = 0.3


@dataclass(frozen=True)
class Box:
    """Axis-aligned box from ``lo`` to ``hi`` (world units)."""

    lo: tuple[float, float, float]
    hi: tuple[float, float, float]
    color: tuple[float, float, float]


@dataclass(frozen=True)
class Cylinder:
    """Capped cylinder along world z: centre ``(x, y)``, ``radius``, from ``z0`` to ``z1``."""

    x: float
    y: float
    radius: float
    z0: float
    z1: float
    color: tuple[float, float, float]


Shape = Box | Cylinder

# Everything stands on the plane z = -0.6; the central box holds the origin, so a camera that
# looks at the origin always sees a surface in its centre pixel.
SCENES: dict[str, tuple[Shape, ...]] = {
    "blocks": (
        Box((-0.3, -0.3, -0.6), (0.3, 0.3, 0.2), (0.9, 0.15, 0.1)),  # red, centre
        Box((0.4, -0.8, -0.6), (0.8, -0.35, -0.2), (0.1, 0.3, 0.95)),  # blue
        Box((-0.8, 0.35, -0.6), (-0.45, 0.7, 0.45), (0.95, 0.85, 0.1)),  # yellow, tall
        Cylinder(0.55, 0.5, 0.22, -0.6, 0.1, (0.1, 0.8, 0.2)),  # green
        Cylinder(-0.55, -0.5, 0.18, -0.6, -0.15, (0.85, 0.1, 0.8)),  # magenta
    ),
}


def scene_bounds(name: str = "blocks") -> tuple[float, ...]:
    """Tight bounds (xmin, ymin, zmin, xmax, ymax, zmax) of a procedural scene's shapes."""
    lows, highs = [], []
    for shape in _shapes(name):
        if isinstance(shape, Box):
            lows.append(shape.lo)
            highs.append(shape.hi)
        else:
            r = shape.radius
            lows.append((shape.x - r, shape.y - r, shape.z0))
            highs.append((shape.x + r, shape.y + r, shape.z1))
    return (*np.min(lows, axis=0).tolist(), *np.max(highs, axis=0).tolist())


def _shapes(name: str) -> tuple[Shape, ...]:
    if name not in SCENES:
        raise ValueError(
            f"unknown procedural scene {name!r}; available: {', '.join(sorted(SCENES))}"
        )
    return SCENES[name]


def _hit_box(box: Box, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slab test: distance to the first hit in front of the origin (inf if none) and normals."""
    lo, hi = np.asarray(box.lo), np.asarray(box.hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = 1.0 / d
        t1, t2 = (lo - o) * inv, (hi - o) * inv
    t1, t2 = np.nan_to_num(t1, nan=-np.inf), np.nan_to_num(t2, nan=np.inf)
    tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
    t_near, t_far = tmin.max(axis=-1), tmax.min(axis=-1)
    hit = (t_near <= t_far) & (t_near > 0)
    axis = tmin.argmax(axis=-1)
    normal = np.zeros_like(d)
    rows = np.arange(len(d))
    normal[rows, axis] = -np.sign(d[rows, axis])
    return np.where(hit, t_near, np.inf), normal


def _hit_cylinder(cyl: Cylinder, o: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Side and cap intersections of a finite capped cylinder (inf if none) and normals."""
    px, py = o[:, 0] - cyl.x, o[:, 1] - cyl.y
    dx, dy = d[:, 0], d[:, 1]
    a = dx * dx + dy * dy
    b = 2 * (px * dx + py * dy)
    c = px * px + py * py - cyl.radius**2
    disc = b * b - 4 * a * c
    with np.errstate(divide="ignore", invalid="ignore"):
        t_side = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    z = o[:, 2] + t_side * d[:, 2]
    side_ok = (a > 1e-12) & (disc >= 0) & (t_side > 0) & (z >= cyl.z0) & (z <= cyl.z1)
    best = np.where(side_ok, t_side, np.inf)
    normal = np.stack([px + t_side * dx, py + t_side * dy, np.zeros_like(a)], -1) / cyl.radius
    for z_cap, n_z in ((cyl.z0, -1.0), (cyl.z1, 1.0)):
        with np.errstate(divide="ignore", invalid="ignore"):
            t_cap = (z_cap - o[:, 2]) / d[:, 2]
            qx, qy = px + t_cap * dx, py + t_cap * dy
        cap_ok = (t_cap > 0) & (qx * qx + qy * qy <= cyl.radius**2) & (t_cap < best)
        best = np.where(cap_ok, t_cap, best)
        normal[cap_ok] = (0.0, 0.0, n_z)
    return best, np.nan_to_num(normal)


def cast_rays(
    origins: Float[np.ndarray, "r 3"], dirs: Float[np.ndarray, "r 3"], name: str = "blocks"
) -> tuple[Float[np.ndarray, "r 3"], Float[np.ndarray, " r"]]:
    """Colour (Lambertian + ambient) and hit mask (1.0 / 0.0) of world-space rays."""
    t_best = np.full(len(origins), np.inf)
    color = np.zeros_like(origins)
    for shape in _shapes(name):
        hit_fn = _hit_box if isinstance(shape, Box) else _hit_cylinder
        t, normal = hit_fn(shape, origins, dirs)
        closer = t < t_best
        t_best = np.where(closer, t, t_best)
        shade = AMBIENT + (1 - AMBIENT) * np.clip(normal @ LIGHT_DIR, 0.0, None)
        color[closer] = np.asarray(shape.color) * shade[closer, None]
    return color, np.isfinite(t_best).astype(np.float64)


def render_view(
    c2w_opengl: Float[np.ndarray, "4 4"],
    width: int,
    height: int,
    camera_angle_x: float = CAMERA_ANGLE_X,
    name: str = "blocks",
    supersample: int = 2,
) -> Float[np.ndarray, "h w 4"]:
    """Straight (not premultiplied) RGBA in [0, 1] seen by an OpenGL camera-to-world pose.

    Each pixel averages ``supersample x supersample`` sub-pixel rays, so edges get fractional
    alpha; alpha is 0 where nothing is hit.
    """
    focal = 0.5 * width / math.tan(0.5 * camera_angle_x)
    s = supersample
    offsets = (np.arange(s) + 0.5) / s
    u = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1)  # sub-pixel columns
    v = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1)
    uu, vv = np.meshgrid(u, v, indexing="xy")
    # OpenGL camera: x right, y up, looks down -z.
    dirs_cam = np.stack(
        [(uu - width / 2) / focal, -(vv - height / 2) / focal, -np.ones_like(uu)], -1
    ).reshape(-1, 3)
    dirs = dirs_cam @ c2w_opengl[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    origins = np.broadcast_to(c2w_opengl[:3, 3], dirs.shape)
    color, alpha = cast_rays(origins, dirs, name)
    premult = np.concatenate([color * alpha[:, None], alpha[:, None]], -1)
    premult = premult.reshape(height, s, width, s, 4).mean(axis=(1, 3))
    a = premult[..., 3:]
    rgb = np.where(a > 0, premult[..., :3] / np.maximum(a, 1e-12), 0.0)
    return np.concatenate([rgb, a], -1)


def look_at_origin(position: Float[np.ndarray, "3"]) -> Float[np.ndarray, "4 4"]:
    """OpenGL camera-to-world pose at ``position`` looking at the origin, world z up."""
    back = position / np.linalg.norm(position)  # camera +z points away from the target
    right = np.cross([0.0, 0.0, 1.0], back)
    if np.linalg.norm(right) < 1e-8:  # straight above: any right vector will do
        right = np.array([1.0, 0.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, up, back, position
    return c2w


def sphere_poses(
    n: int, offset: float = 0.0, radius: float = CAMERA_RADIUS
) -> Float[np.ndarray, "n 4 4"]:
    """``n`` poses spread evenly over the upper hemisphere (a golden-angle spiral from 6 to 72
    degrees of elevation), all looking at the origin; ``offset`` (radians) turns the spiral."""
    i = np.arange(n) + 0.5
    z = 0.1 + 0.85 * i / max(n, 1)
    azimuth = offset + i * math.pi * (3 - math.sqrt(5))
    ring = np.sqrt(1 - z * z)
    points = radius * np.stack([ring * np.cos(azimuth), ring * np.sin(azimuth), z], -1)
    return np.stack([look_at_origin(p) for p in points]) if n else np.zeros((0, 4, 4))


@dataclass(frozen=True)
class _Params:
    name: str
    resolution: int
    n_train: int
    n_val: int
    n_test: int
    generator_version: int = GENERATOR_VERSION
    camera_angle_x: float = CAMERA_ANGLE_X
    camera_radius: float = CAMERA_RADIUS


def _render_scene(params: _Params, out: Path) -> None:
    """Write the Blender-layout scene into ``out`` (an empty folder)."""
    counts = {"train": params.n_train, "val": params.n_val, "test": params.n_test}
    for k, (split, n) in enumerate(counts.items()):
        (out / split).mkdir()
        frames = []
        for i, c2w in enumerate(sphere_poses(n, offset=k * 2.0)):
            rgba = render_view(c2w, params.resolution, params.resolution, name=params.name)
            iio.imwrite(out / split / f"r_{i}.png", np.round(rgba * 255).astype(np.uint8))
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": c2w.tolist()})
        meta = {"camera_angle_x": params.camera_angle_x, "frames": frames}
        (out / f"transforms_{split}.json").write_text(json.dumps(meta, indent=2))
    (out / "scene_info.json").write_text(json.dumps(asdict(params), indent=2))


def _is_complete(folder: Path, params: _Params) -> bool:
    try:
        info = json.loads((folder / "scene_info.json").read_text())
    except (OSError, ValueError):
        return False
    jsons = [folder / f"transforms_{split}.json" for split in ("train", "val", "test")]
    return info == asdict(params) and all(path.is_file() for path in jsons)


def default_cache_dir(name: str = "blocks") -> Path:
    """``$TF_CACHE_DIR/scenes/<name>`` if TF_CACHE_DIR is set, else
    ``~/.cache/tensorfields/scenes/<name>``."""
    base = os.environ.get("TF_CACHE_DIR")
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "tensorfields"
    return root / "scenes" / name


def ensure_procedural_scene(
    name: str = "blocks",
    cache_dir: Path | None = None,
    resolution: int = 100,
    n_train: int = 40,
    n_val: int = 8,
    n_test: int = 8,
) -> Path:
    """Folder holding procedural scene ``name`` in the Blender layout, rendered if needed.

    ``cache_dir`` is the scene's folder (default :func:`default_cache_dir`). A folder rendered
    with the same parameters and generator version (``scene_info.json``) is reused; otherwise the
    scene is rendered into a temporary sibling folder and renamed into place, so an interrupted
    render never leaves a half-written scene.
    """
    _shapes(name)
    if resolution < 1 or min(n_train, n_val, n_test) < 1:
        raise ValueError("resolution and the number of views per split must be >= 1")
    params = _Params(name, int(resolution), int(n_train), int(n_val), int(n_test))
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir(name)
    if _is_complete(folder, params):
        return folder
    n = n_train + n_val + n_test
    print(
        f"Rendering procedural scene '{name}' ({n} views, {resolution}x{resolution}) into {folder}",
        file=sys.stderr,
        flush=True,
    )
    write_folder_atomically(
        folder, lambda tmp: _render_scene(params, tmp), lambda: _is_complete(folder, params)
    )
    return folder
