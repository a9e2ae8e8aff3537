"""Point clouds from renders (as nerfstudio exports them): each rendered pixel that is opaque
enough becomes a world point at its expected depth, coloured as rendered."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.data.cameras import Cameras
from tensorfields.data.ply import write_ply_vertices
from tensorfields.models.base import Model


def back_project(
    cameras: Cameras, depth: Float[Tensor, "h w"], depth_kind: Literal["ray", "z"]
) -> Float[Tensor, "h w 3"]:
    """World points at ``depth`` through every pixel centre of camera 0 of ``cameras``.

    ``depth_kind`` (the model's ``Model.depth_kind``): 'ray' is the distance along the unit ray
    direction (marched renders), 'z' the camera-frame z (rasterized renders); a z depth is the
    ray distance times the cosine between the ray and the optical axis.
    """
    origins, directions = cameras.rays(0)
    depth = depth.to(origins)
    if depth_kind == "z":
        axis = cameras.c2w[0, :3, 2]  # OpenCV: the camera looks down its +z
        depth = depth / (directions @ axis).clamp(min=1e-6)
    elif depth_kind != "ray":
        raise ValueError(f"unknown depth kind {depth_kind!r}; expected 'ray' or 'z'")
    return origins + directions * depth[..., None]


@torch.no_grad()
def extract_point_cloud(
    model: Model,
    split,
    every: int = 1,
    max_points: int = 1_000_000,
    min_accumulation: float = 0.9,
    seed: int = 0,
) -> tuple[Float[Tensor, "n 3"], Float[Tensor, "n 3"]]:
    """Points and colours in [0, 1] from every ``every``-th view of ``split``: pixels whose
    accumulated opacity exceeds ``min_accumulation`` (softer ones have a depth between
    surfaces), at most ``max_points`` drawn uniformly at random (seeded) over all views.

    Colours are the rendered ones (blended over the background by ``1 - accumulation``, which
    the threshold keeps small). Memory stays near ``2 * max_points``: every candidate gets a
    random key and only the smallest keys are kept, a uniform sample without the full set.
    """
    if every < 1 or max_points < 1:
        raise ValueError(f"--every and --max-points must be >= 1, got {every} and {max_points}")
    generator = torch.Generator().manual_seed(seed)
    keys, xyz, rgb = torch.empty(0), torch.empty(0, 3), torch.empty(0, 3)
    for index in range(0, len(split), every):
        output = model.render_view(split, index)
        points = back_project(split.cameras[index], output.depth.float().cpu(), model.depth_kind)
        keep = output.accumulation.cpu() > min_accumulation
        new_xyz, new_rgb = points[keep], output.rgb.float().cpu()[keep]
        new_keys = torch.rand(new_xyz.shape[0], generator=generator)
        keys, xyz, rgb = (
            torch.cat([keys, new_keys]),
            torch.cat([xyz, new_xyz]),
            torch.cat([rgb, new_rgb]),
        )
        if keys.shape[0] > 2 * max_points:
            keys, xyz, rgb = _smallest(keys, xyz, rgb, max_points)
    if keys.shape[0] == 0:
        raise ValueError(
            f"no pixel of the rendered views has accumulation above {min_accumulation:g}: "
            "no points (lower --min-accumulation)"
        )
    _, xyz, rgb = _smallest(keys, xyz, rgb, max_points)
    return xyz, rgb.clamp(0.0, 1.0)


def _smallest(keys: Tensor, xyz: Tensor, rgb: Tensor, count: int) -> tuple[Tensor, ...]:
    """The ``count`` entries with the smallest keys, in key order."""
    order = torch.argsort(keys)[:count]
    return keys[order], xyz[order], rgb[order]


def write_point_cloud(path: Path, xyz: Float[Tensor, "n 3"], rgb: Float[Tensor, "n 3"]) -> None:
    """PLY with float x y z and uchar red green blue (what point cloud viewers and
    ``--model.init-points`` read)."""
    points = xyz.cpu().numpy()
    colours = np.round(rgb.cpu().numpy() * 255.0).astype(np.uint8)
    columns = {axis: points[:, i] for i, axis in enumerate("xyz")}
    columns |= {name: colours[:, i] for i, name in enumerate(("red", "green", "blue"))}
    write_ply_vertices(path, columns)
