"""Albedo of a procedural human's surface, as a function of the canonical (rest-pose) point.

Because the colour depends only on where a point sits on the rest-pose body (and which kind of
part it belongs to), the texture moves with the body and looks the same from any camera.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import Float

from tensorfields.data.humans.characters import Identity

MATERIALS = ("skin", "head", "shirt", "torso", "trousers", "shoes")


def surface_albedo(
    identity: Identity, material: str, points: Float[np.ndarray, "n 3"]
) -> Float[np.ndarray, "n 3"]:
    """RGB in [0, 1] of canonical surface ``points`` of parts made of ``material``."""
    if material not in MATERIALS:
        raise ValueError(f"unknown material {material!r}; known: {', '.join(MATERIALS)}")
    n = len(points)
    if material in ("skin", "trousers", "shoes"):
        return np.tile(np.asarray(getattr(identity, material)), (n, 1))
    if material == "shirt":
        return _shirt(identity, points)
    if material == "torso":
        return _torso(identity, points)
    return _head(identity, points)


def _shirt(identity: Identity, points: np.ndarray) -> np.ndarray:
    """The shirt's pattern: plain, horizontal stripes, 3-D checks, or left/right halves."""
    half = identity.pattern_period / 2
    cells = np.floor(points / half).astype(np.int64)
    if identity.pattern == "stripes":
        second = cells[:, 2] % 2 == 1
    elif identity.pattern == "checks":
        second = cells.sum(axis=1) % 2 == 1
    elif identity.pattern == "two-tone":
        second = points[:, 0] < 0  # the right half (the body's left is +x)
    else:
        second = np.zeros(len(points), dtype=bool)
    return np.where(second[:, None], np.asarray(identity.accent), np.asarray(identity.shirt))


def _torso(identity: Identity, points: np.ndarray) -> np.ndarray:
    """Trousers below the belt, shirt above, and a round badge on the left chest (front)."""
    m = identity.proportions.landmarks()
    color = _shirt(identity, points)
    below = points[:, 2] < m["pelvis"] + 0.02 * m["unit"]
    color[below] = identity.trousers
    badge_centre = np.array(
        [0.45 * m["shoulder_half_width"], m["spine"] + 0.6 * (m["shoulder"] - m["spine"])]
    )
    distance = np.linalg.norm(points[:, [0, 2]] - badge_centre, axis=1)
    badge = (distance < 0.03 * m["unit"]) & (points[:, 1] < 0)
    # The accent colour on a plain shirt; on a patterned one (which already shows the accent),
    # the shirt colour's complement.
    color[badge] = (
        identity.accent if identity.pattern == "plain" else 1.0 - np.asarray(identity.shirt)
    )
    return color


def _head(identity: Identity, points: np.ndarray) -> np.ndarray:
    """Skin with two dark eyes at the front, hair over the top and the back."""
    m = identity.proportions.landmarks()
    local = (points - np.array([0.0, 0.0, m["head"]])) / m["head_radius"]
    color = np.tile(np.asarray(identity.skin), (len(points), 1))
    hair = (local[:, 2] > 0.45) | ((local[:, 1] > -0.2) & (local[:, 2] > -0.6))
    color[hair] = identity.hair
    eyes = np.minimum(
        np.hypot(local[:, 0] - 0.35, local[:, 2] - 0.1),
        np.hypot(local[:, 0] + 0.35, local[:, 2] - 0.1),
    )
    color[(eyes < 0.14) & (local[:, 1] < 0)] = (0.05, 0.05, 0.08)
    return color
