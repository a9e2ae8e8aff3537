"""Identities of the procedural humans: body proportions, clothes, and the primitives they are
made of (capsules and ellipsoids, each attached to the joint that moves it).

Colours are a function of the canonical (rest-pose) surface point, so the texture moves with
the body. Every identity has an asymmetric front (a badge on the left chest, eyes, hair on the
back of the head), so the way the body faces is visible from any side.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from tensorfields.data.humans.skeleton import Proportions, joint, rest_joints

PATTERNS = ("plain", "stripes", "checks", "two-tone")
Color = tuple[float, float, float]


@dataclass(frozen=True)
class Identity:
    """One person: body shape and clothes."""

    name: str
    proportions: Proportions
    girth: float
    """Scale of the limb radii (1.0 = average)."""
    belly: float
    """Scale of the torso depth (front to back)."""
    skin: Color
    hair: Color
    shirt: Color
    accent: Color
    """Second shirt colour (stripes, checks, the other half of two-tone) and the badge."""
    trousers: Color
    shoes: Color
    pattern: str
    pattern_period: float
    """Metres per repeat of the stripes or checks."""
    long_sleeves: bool
    long_trousers: bool


@dataclass(frozen=True)
class Capsule:
    """Segment ``a -> b`` (canonical frame) swept by a sphere of ``radius``."""

    joint: int
    a: tuple[float, float, float]
    b: tuple[float, float, float]
    radius: float
    material: str


@dataclass(frozen=True)
class Ellipsoid:
    """Axis-aligned (canonical frame) ellipsoid."""

    joint: int
    center: tuple[float, float, float]
    radii: tuple[float, float, float]
    material: str


Primitive = Capsule | Ellipsoid


def _hsv(h: float, s: float, v: float) -> Color:
    return tuple(float(c) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))  # type: ignore[return-value]


def sample_identities(seed: int, n: int) -> list[Identity]:
    """``n`` identities drawn deterministically from ``seed``: shirt hues spread around the
    colour wheel, the patterns cycling through all of :data:`PATTERNS` in a seeded order."""
    rng = np.random.default_rng(seed)
    hue0 = rng.uniform()
    patterns = rng.permutation(len(PATTERNS))
    people = []
    for i in range(n):
        u = rng.uniform
        proportions = Proportions(
            height=u(1.55, 1.9),
            leg=u(0.88, 1.12),
            arm=u(0.88, 1.12),
            torso=u(0.9, 1.1),
            shoulders=u(0.85, 1.15),
            hips=u(0.85, 1.2),
        )
        hue = hue0 + (i + u(-0.2, 0.2)) / n
        skin_tone = u()
        people.append(
            Identity(
                name=f"id{i:02d}",
                proportions=proportions,
                girth=u(0.8, 1.3),
                belly=u(0.85, 1.35),
                skin=tuple(
                    float(a + (b - a) * skin_tone)
                    for a, b in zip((0.96, 0.8, 0.68), (0.42, 0.27, 0.18), strict=True)
                ),  # type: ignore[arg-type]
                hair=_hsv(u(0.02, 0.12), u(0.3, 0.8), u(0.08, 0.5)),
                shirt=_hsv(hue, u(0.55, 0.9), u(0.65, 0.95)),
                accent=_hsv(hue + 0.5 + u(-0.1, 0.1), u(0.2, 0.7), u(0.85, 1.0)),
                trousers=_hsv(u(), u(0.2, 0.7), u(0.2, 0.5)),
                shoes=_hsv(u(), u(0.0, 0.3), u(0.1, 0.3)),
                pattern=PATTERNS[patterns[i % len(PATTERNS)]],
                pattern_period=u(0.1, 0.2),
                long_sleeves=bool(rng.integers(2)),
                long_trousers=bool(rng.integers(4) > 0),
            )
        )
    return people


def body_primitives(identity: Identity) -> tuple[Primitive, ...]:
    """The capsules and ellipsoids of ``identity``'s canonical (rest-pose) body."""
    m = identity.proportions.landmarks()
    joints = rest_joints(identity.proportions)
    h, g, belly = m["unit"], identity.girth, identity.belly

    def at(name: str) -> np.ndarray:
        return joints[joint(name)]

    waist_half = m["hip_half_width"] + 0.035 * h * g
    chest_half = 0.5 * (m["shoulder"] - m["spine"]) + 0.03 * h
    parts: list[Primitive] = [
        Ellipsoid(  # hips and belly, below the spine joint
            joint("pelvis"),
            (0.0, 0.0, 0.5 * (m["hip"] + m["spine"])),
            (waist_half, 0.06 * h * belly, 0.5 * (m["spine"] - m["hip"]) + 0.05 * h),
            "torso",
        ),
        Ellipsoid(
            joint("spine"),
            (0.0, 0.0, m["spine"] + chest_half - 0.03 * h),
            (max(0.8 * m["shoulder_half_width"], waist_half), 0.065 * h * belly, chest_half),
            "torso",
        ),
        _capsule(  # the neck
            "spine",
            (0.0, 0.0, m["shoulder"] - 0.03 * h),
            (0.0, 0.0, m["head"] - 0.03 * h),
            0.028 * h * g,
            "skin",
        ),
        Ellipsoid(
            joint("spine"),
            (0.0, 0.0, m["head"]),
            (0.05 * h, 0.058 * h, m["head_radius"]),
            "head",
        ),
    ]
    for side, sign in (("l", 1.0), ("r", -1.0)):
        shoulder, elbow, wrist = (at(f"{side}_{j}") for j in ("shoulder", "elbow", "wrist"))
        hip, knee, ankle = (at(f"{side}_{j}") for j in ("hip", "knee", "ankle"))
        hand_end = wrist + 0.05 * h * (wrist - elbow) / np.linalg.norm(wrist - elbow)
        forearm = "shirt" if identity.long_sleeves else "skin"
        shin = "trousers" if identity.long_trousers else "skin"
        neck_side = (sign * 0.04 * h, 0.0, m["shoulder"] - 0.01 * h)
        parts += [
            _capsule("spine", neck_side, shoulder, 0.03 * h * g, "shirt"),
            _capsule(f"{side}_shoulder", shoulder, elbow, 0.027 * h * g, "shirt"),
            _capsule(f"{side}_elbow", elbow, wrist, 0.022 * h * g, forearm),
            _capsule(f"{side}_elbow", wrist, hand_end, 0.024 * h, "skin"),  # the hand
            _capsule(f"{side}_hip", hip, knee, 0.038 * h * g, "trousers"),
            _capsule(f"{side}_knee", knee, ankle, 0.028 * h * g, shin),
            Ellipsoid(  # the foot, sole on z = 0
                joint(f"{side}_knee"),
                (float(ankle[0]), -0.03 * h, 0.022 * h),
                (0.026 * h, 0.068 * h, 0.022 * h),
                "shoes",
            ),
        ]
    return tuple(parts)


def _capsule(name: str, a: object, b: object, radius: float, material: str) -> Capsule:
    """A capsule moved by joint ``name``."""
    ends = [tuple(float(c) for c in np.asarray(p, dtype=np.float64)) for p in (a, b)]
    return Capsule(joint(name), ends[0], ends[1], float(radius), material)  # type: ignore[arg-type]
