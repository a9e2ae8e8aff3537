"""Analytic ray casting of the posed capsule/ellipsoid bodies (numpy, float64).

This renderer is independent of the Gaussian code on purpose: it makes the ground truth that the
avatar models are tested against. Each primitive is rigidly attached to one joint, so a world ray
is carried into that joint's canonical frame by the inverse bone transform, intersected there in
closed form, and the nearest hit over all primitives wins. Shading uses the *canonical* normal
and a fixed canonical light, so it is baked into the body (it turns with the body and does not
change with the camera).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int

from tensorfields.data.humans.characters import Capsule, Identity, Primitive
from tensorfields.data.humans.texture import surface_albedo

LIGHT = np.array([0.4, -0.7, 0.6]) / np.linalg.norm([0.4, -0.7, 0.6])
"""Canonical light direction: from the front (-y), the body's left (+x) and above."""
AMBIENT = 0.35


def _sphere(oc: np.ndarray, d: np.ndarray, radius: float) -> np.ndarray:
    """Entry distance of unit rays (origins ``oc`` relative to the centre) into a sphere."""
    b = np.einsum("ij,ij->i", oc, d)
    h = b * b - (np.einsum("ij,ij->i", oc, oc) - radius * radius)
    t = -b - np.sqrt(np.maximum(h, 0.0))
    return np.where((h >= 0) & (t > 0), t, np.inf)


def intersect_capsule(
    origins: Float[np.ndarray, "r 3"],
    dirs: Float[np.ndarray, "r 3"],
    a: Float[np.ndarray, "3"],
    b: Float[np.ndarray, "3"],
    radius: float,
) -> Float[np.ndarray, " r"]:
    """Distance along unit rays to a capsule (segment ``a -> b`` of ``radius``), inf if missed.

    The capsule is convex and the union of a finite cylinder and two end spheres, so its entry
    point is the nearest of theirs."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ba, oa = b - a, origins - a
    baba, bard, baoa = ba @ ba, dirs @ ba, oa @ ba
    qa = baba - bard * bard
    qb = baba * np.einsum("ij,ij->i", dirs, oa) - baoa * bard
    qc = baba * np.einsum("ij,ij->i", oa, oa) - baoa * baoa - radius * radius * baba
    h = qb * qb - qa * qc
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-qb - np.sqrt(np.maximum(h, 0.0))) / qa
    y = baoa + t * bard
    side = (qa > 1e-12) & (h >= 0) & (t > 0) & (y >= 0) & (y <= baba)
    t = np.where(side, t, np.inf)
    return np.minimum(t, np.minimum(_sphere(oa, dirs, radius), _sphere(origins - b, dirs, radius)))


def intersect_ellipsoid(
    origins: Float[np.ndarray, "r 3"],
    dirs: Float[np.ndarray, "r 3"],
    center: Float[np.ndarray, "3"],
    radii: Float[np.ndarray, "3"],
) -> Float[np.ndarray, " r"]:
    """Distance along rays to an axis-aligned ellipsoid, inf if missed."""
    o = (origins - np.asarray(center)) / np.asarray(radii)
    d = dirs / np.asarray(radii)
    qa = np.einsum("ij,ij->i", d, d)
    qb = np.einsum("ij,ij->i", o, d)
    h = qb * qb - qa * (np.einsum("ij,ij->i", o, o) - 1.0)
    t = (-qb - np.sqrt(np.maximum(h, 0.0))) / qa
    return np.where((h >= 0) & (t > 0), t, np.inf)


def _bounding_sphere(prim: Primitive) -> tuple[np.ndarray, float]:
    if isinstance(prim, Capsule):
        a, b = np.asarray(prim.a), np.asarray(prim.b)
        return 0.5 * (a + b), 0.5 * float(np.linalg.norm(b - a)) + prim.radius
    return np.asarray(prim.center), float(max(prim.radii))


def canonical_normals(
    prim: Primitive, points: Float[np.ndarray, "n 3"]
) -> Float[np.ndarray, "n 3"]:
    """Unit outward normals of ``prim`` at canonical surface ``points``."""
    if isinstance(prim, Capsule):
        a, b = np.asarray(prim.a), np.asarray(prim.b)
        ba = b - a
        s = np.clip((points - a) @ ba / max(ba @ ba, 1e-18), 0.0, 1.0)
        normal = points - (a + s[:, None] * ba)
    else:
        normal = (points - np.asarray(prim.center)) / np.asarray(prim.radii) ** 2
    return normal / np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-18)


@dataclass
class Hits:
    """Nearest hit of each ray: distance (inf: none), primitive index (-1: none), and the hit
    point in the canonical frame of that primitive's joint."""

    depth: Float[np.ndarray, " r"]
    primitive: Int[np.ndarray, " r"]
    points: Float[np.ndarray, "r 3"]


def cast_rays(
    origins: Float[np.ndarray, "r 3"],
    dirs: Float[np.ndarray, "r 3"],
    primitives: Sequence[Primitive],
    bone_transforms: Float[np.ndarray, "J 4 4"],
) -> Hits:
    """Nearest hits of world rays (unit ``dirs``) with the posed primitives; bone transforms
    map canonical to posed world space and must be rigid."""
    origins = np.broadcast_to(np.asarray(origins, dtype=np.float64), dirs.shape)
    hits = Hits(np.full(len(dirs), np.inf), np.full(len(dirs), -1), np.zeros_like(dirs))
    for index, prim in enumerate(primitives):
        transform = np.asarray(bone_transforms[prim.joint], dtype=np.float64)
        rotation, shift = transform[:3, :3], transform[:3, 3]
        centre, reach = _bounding_sphere(prim)
        oc = rotation @ centre + shift - origins  # cull with the posed bounding sphere
        along = np.einsum("ij,ij->i", oc, dirs)
        near = np.einsum("ij,ij->i", oc, oc) - along * along <= reach * reach
        rays = np.nonzero(near & (along > -reach))[0]
        if not len(rays):
            continue
        o = (origins[rays] - shift) @ rotation  # rotation^T (o - shift), row by row
        d = dirs[rays] @ rotation
        if isinstance(prim, Capsule):
            t = intersect_capsule(o, d, np.asarray(prim.a), np.asarray(prim.b), prim.radius)
        else:
            t = intersect_ellipsoid(o, d, np.asarray(prim.center), np.asarray(prim.radii))
        closer = t < hits.depth[rays]
        won = rays[closer]
        hits.depth[won] = t[closer]
        hits.primitive[won] = index
        hits.points[won] = o[closer] + t[closer, None] * d[closer]
    return hits


def shade(
    identity: Identity, primitives: Sequence[Primitive], hits: Hits
) -> Float[np.ndarray, "r 3"]:
    """Albedo times (ambient + diffuse with the canonical normal and :data:`LIGHT`); 0 on misses."""
    color = np.zeros((len(hits.depth), 3))
    for index, prim in enumerate(primitives):
        mine = hits.primitive == index
        if not mine.any():
            continue
        points = hits.points[mine]
        lambert = np.clip(canonical_normals(prim, points) @ LIGHT, 0.0, None)
        light = AMBIENT + (1.0 - AMBIENT) * lambert
        color[mine] = surface_albedo(identity, prim.material, points) * light[:, None]
    return color


def pixel_rays(
    c2w: Float[np.ndarray, "4 4"],
    intrinsics: tuple[float, float, float, float],
    width: int,
    height: int,
    supersample: int = 1,
) -> tuple[Float[np.ndarray, "3"], Float[np.ndarray, "h s w s 3"]]:
    """Origin and unit directions of an OpenCV camera's rays, ``supersample`` x ``supersample``
    evenly spread sub-pixel rays per pixel (one at the pixel centre for 1)."""
    fx, fy, cx, cy = intrinsics
    offsets = (np.arange(supersample) + 0.5) / supersample
    u = (np.arange(width)[:, None] + offsets[None, :]).reshape(-1)
    v = (np.arange(height)[:, None] + offsets[None, :]).reshape(-1)
    uu, vv = np.meshgrid(u, v, indexing="xy")
    dirs = np.stack([(uu - cx) / fx, (vv - cy) / fy, np.ones_like(uu)], -1) @ c2w[:3, :3].T
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    return c2w[:3, 3].copy(), dirs.reshape(height, supersample, width, supersample, 3)


def render_rgba(
    identity: Identity,
    primitives: Sequence[Primitive],
    bone_transforms: Float[np.ndarray, "J 4 4"],
    c2w: Float[np.ndarray, "4 4"],
    intrinsics: tuple[float, float, float, float],
    width: int,
    height: int,
    supersample: int = 2,
) -> Float[np.ndarray, "h w 4"]:
    """Straight (not premultiplied) RGBA in [0, 1]; alpha is the pixel's coverage by the body
    (the fraction of its ``supersample**2`` sub-pixel rays that hit), 0 on the background."""
    origin, dirs = pixel_rays(c2w, intrinsics, width, height, supersample)
    hits = cast_rays(origin, dirs.reshape(-1, 3), primitives, bone_transforms)
    alpha = np.isfinite(hits.depth).astype(np.float64)
    premult = np.concatenate([shade(identity, primitives, hits), alpha[:, None]], -1)
    premult = premult.reshape(height, supersample, width, supersample, 4).mean(axis=(1, 3))
    a = premult[..., 3:]
    rgb = np.where(a > 0, premult[..., :3] / np.maximum(a, 1e-12), 0.0)
    return np.concatenate([np.clip(rgb, 0.0, 1.0), a], -1)


def posed_bounds(
    primitives: Sequence[Primitive], bone_transforms: Float[np.ndarray, "J 4 4"]
) -> tuple[Float[np.ndarray, "3"], Float[np.ndarray, "3"]]:
    """Tight world-space box (lowest, highest corner) around the posed primitives."""
    lows, highs = [], []
    for prim in primitives:
        transform = np.asarray(bone_transforms[prim.joint], dtype=np.float64)
        rotation, shift = transform[:3, :3], transform[:3, 3]
        if isinstance(prim, Capsule):
            ends = np.stack([prim.a, prim.b]) @ rotation.T + shift
            lows.append(ends.min(axis=0) - prim.radius)
            highs.append(ends.max(axis=0) + prim.radius)
        else:
            centre = rotation @ np.asarray(prim.center) + shift
            reach = np.sqrt(((rotation * np.asarray(prim.radii)) ** 2).sum(axis=1))
            lows.append(centre - reach)
            highs.append(centre + reach)
    return np.min(lows, axis=0), np.max(highs, axis=0)
