"""Pose sequences of the procedural humans: a training motion and out-of-distribution poses.

Training motion: walking in place (hips, knees, shoulders and elbows swinging, a little spine
twist) while the whole body turns once, 360 degrees about the vertical axis, in front of a fixed
camera. Its held-out frames are the in-distribution test poses. The out-of-distribution poses
(arms overhead, a deep squat, a kick, a star jump, a twisting reach) bend joints far beyond the
training motion's range, at several body turns.

A pose is one local rotation per joint (joint 0's is the global orientation) plus a root
translation that keeps the lower ankle at its rest height (the feet on the ground).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from jaxtyping import Float, Int

from tensorfields.core.skinning import forward_kinematics, rotmat_to_quat
from tensorfields.data.humans.skeleton import ARM_DROP, FORWARD, PARENTS, joint

OOD_KINDS = ("arms_up", "squat", "kick", "star", "twist_reach")


def rotation(axis: str, angle: float) -> Float[np.ndarray, "3 3"]:
    """Right-handed rotation by ``angle`` radians about world axis ``"x"``, ``"y"`` or ``"z"``."""
    c, s = math.cos(angle), math.sin(angle)
    i, j = {"x": (1, 2), "y": (2, 0), "z": (0, 1)}[axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def elbow_flex(side: str, angle: float) -> Float[np.ndarray, "3 3"]:
    """Bend the forearm of arm ``side`` by ``angle`` radians towards the front of the body."""
    sign = 1.0 if side == "l" else -1.0
    forearm = np.array([sign * math.cos(ARM_DROP), 0.0, -math.sin(ARM_DROP)])
    axis = np.cross(forearm, FORWARD)
    axis /= np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * (k @ k)


def matrix_to_axis_angle(matrix: Float[np.ndarray, "*batch 3 3"]) -> Float[np.ndarray, "*batch 3"]:
    """Axis-angle (angle in [0, pi]) of rotation matrices."""
    quat = rotmat_to_quat(torch.from_numpy(np.asarray(matrix, dtype=np.float64))).numpy()
    w, v = quat[..., :1], quat[..., 1:]
    norm = np.linalg.norm(v, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(norm, w)
    return v * np.where(norm > 1e-12, angle / np.maximum(norm, 1e-12), 2.0)


@dataclass(frozen=True)
class MotionStyle:
    """Per-identity variation of the training motion."""

    amplitude: float
    """Scale of every swing (1.0 = average)."""
    phase: float
    """Gait phase (radians) of the first frame."""
    yaw0: float
    """Body turn (radians about z) of the first frame; 0 faces the camera."""
    steps: float
    """Gait cycles over the whole sequence (one body turn)."""

    @staticmethod
    def sample(rng: np.random.Generator) -> MotionStyle:
        amplitude, phase, yaw0 = (
            rng.uniform(0.85, 1.15),
            rng.uniform(0, 2 * math.pi),
            rng.uniform(0, 2 * math.pi),
        )
        return MotionStyle(amplitude, phase, yaw0, float(rng.integers(3, 5)))


def _identity_rotations(n: int) -> np.ndarray:
    return np.tile(np.eye(3), (n, len(PARENTS), 1, 1))


def walking_turn(n_frames: int, style: MotionStyle) -> Float[np.ndarray, "n 15 3 3"]:
    """Local joint rotations of the training motion, frame ``i`` at ``i / n_frames`` of it."""
    rotations = _identity_rotations(n_frames)
    a = style.amplitude
    for i in range(n_frames):
        u = i / n_frames
        phi = style.phase + 2 * math.pi * style.steps * u
        r = rotations[i]
        r[joint("pelvis")] = rotation("z", style.yaw0 + 2 * math.pi * u)
        r[joint("spine")] = rotation("z", 0.12 * a * math.sin(phi)) @ rotation("x", 0.06)
        for side, sign, offset in (("l", 1.0, 0.0), ("r", -1.0, math.pi)):
            swing = math.sin(phi + offset)
            r[joint(f"{side}_shoulder")] = rotation("x", 0.4 * a * swing) @ rotation(
                "y", sign * 0.5
            )
            r[joint(f"{side}_elbow")] = elbow_flex(side, 0.35 + 0.25 * a * (1 + swing) / 2)
            r[joint(f"{side}_hip")] = rotation("x", -0.45 * a * swing)
            lift = ((1 + math.sin(phi + offset + 0.6)) / 2) ** 2
            r[joint(f"{side}_knee")] = rotation("x", 0.1 + 0.7 * a * lift)
    return rotations


def _ood_pose(kind: str, s: float, mirror: bool) -> dict[str, np.ndarray]:
    """Local rotations of one out-of-distribution pose of strength ``s`` (about 1)."""
    rx, ry = partial(rotation, "x"), partial(rotation, "y")
    if kind == "arms_up":
        return {"l_shoulder": ry(-1.9 * s), "r_shoulder": ry(1.9 * s)}
    if kind == "squat":
        arms = {
            f"{side}_shoulder": rx(-1.2 * s) @ ry(sign * 0.3)
            for side, sign in (("l", 1), ("r", -1))
        }
        legs = {
            f"{side}_{j}": rx(t * s) for side in "lr" for j, t in (("hip", -1.6), ("knee", 1.9))
        }
        return {"spine": rx(0.5 * s), **arms, **legs}
    if kind == "kick":
        kick, stand = ("r", "l") if mirror else ("l", "r")
        return {
            f"{kick}_hip": rx(-1.3 * s),
            f"{kick}_knee": rx(0.1),
            f"{stand}_knee": rx(0.15),
            "spine": rx(-0.15),
            "l_shoulder": ry(-0.3),
            "r_shoulder": ry(0.3),
        }
    if kind == "star":
        return {
            "l_hip": ry(-0.6 * s),
            "r_hip": ry(0.6 * s),
            "l_shoulder": ry(-1.2 * s),
            "r_shoulder": ry(1.2 * s),
        }
    if kind == "twist_reach":
        reach, other = ("r", "l") if mirror else ("l", "r")
        sign = -1.0 if mirror else 1.0
        return {
            "spine": rotation("z", sign * 0.7 * s) @ rx(0.45),
            f"{reach}_shoulder": rx(-2.4 * s),
            f"{other}_shoulder": rx(0.6) @ ry(-sign * 0.3),
            f"{other}_elbow": elbow_flex(other, 1.4),
        }
    raise ValueError(f"unknown out-of-distribution pose {kind!r}; known: {', '.join(OOD_KINDS)}")


def ood_poses(
    n_frames: int, style: MotionStyle, rng: np.random.Generator
) -> tuple[Float[np.ndarray, "n 15 3 3"], list[str]]:
    """Local rotations of ``n_frames`` out-of-distribution poses (cycling through
    :data:`OOD_KINDS`, each at a different body turn) and their kinds."""
    rotations = _identity_rotations(n_frames)
    kinds = []
    for k in range(n_frames):
        kind = OOD_KINDS[k % len(OOD_KINDS)]
        local = _ood_pose(kind, rng.uniform(0.9, 1.1), mirror=(k // len(OOD_KINDS)) % 2 == 1)
        for name, matrix in local.items():
            rotations[k, joint(name)] = matrix
        yaw = style.yaw0 + 2 * math.pi * (k + 0.5) / max(n_frames, 1) + rng.uniform(-0.3, 0.3)
        rotations[k, joint("pelvis")] = rotation("z", yaw)
        kinds.append(kind)
    return rotations, kinds


def ground_translation(
    rotations: Float[np.ndarray, "n 15 3 3"], rest_joints: Float[np.ndarray, "15 3"]
) -> Float[np.ndarray, "n 3"]:
    """Root translations (vertical only) that put the lower ankle at its rest height."""
    rest = torch.from_numpy(np.asarray(rest_joints, dtype=np.float64))
    local = torch.from_numpy(np.asarray(rotations, dtype=np.float64))
    _, posed = forward_kinematics(PARENTS, rest.expand(len(rotations), -1, -1), local)
    ankles = [joint("l_ankle"), joint("r_ankle")]
    lowest = posed[:, ankles, 2].min(dim=1).values.numpy()
    translation = np.zeros((len(rotations), 3))
    translation[:, 2] = rest_joints[ankles[0], 2] - lowest
    return translation


def split_sequence(n_train: int, n_test: int, n_val: int) -> dict[str, Int[np.ndarray, " k"]]:
    """Frame indices of a training sequence of ``n_train + n_test + n_val`` frames: the test and
    val frames are spread evenly between training frames (held out, in distribution)."""
    total = n_train + n_test + n_val
    test = np.unique(np.floor((np.arange(n_test) + 0.5) * total / max(n_test, 1)).astype(int))
    rest = np.setdiff1d(np.arange(total), test)
    val = rest[np.floor((np.arange(n_val) + 0.25) * len(rest) / max(n_val, 1)).astype(int)]
    train = np.setdiff1d(rest, val)
    assert len(test) == n_test and len(np.unique(val)) == n_val and len(train) == n_train
    return {"train": train, "test": test, "val": val}
