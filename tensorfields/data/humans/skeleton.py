"""The 15-joint skeleton of the procedural humans and an identity's rest-pose joints.

World and canonical frames: z up, the body stands on z = 0 and faces -y, so its left side is +x.
The rest pose is an A-pose: legs straight down, arms 45 degrees below horizontal.

The five leaf joints (``head``, wrists, ankles) are end sites: they carry no body part of their
own and never rotate, so their bone transforms equal their parents' (the hands move with the
forearms, the feet with the shins, the head with the spine). Every body part therefore lies along
a segment from a joint to one of its children and moves with that joint, which is exactly the
nearest-bone model of :func:`tensorfields.core.skinning.bone_skinning_weights`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

from tensorfields.data.frames import Skeleton

JOINT_NAMES = (
    "pelvis",
    "spine",
    "head",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_hip",
    "r_knee",
    "r_ankle",
)
PARENTS = (-1, 0, 1, 1, 3, 4, 1, 6, 7, 0, 9, 10, 0, 12, 13)
LEAVES = (2, 5, 8, 11, 14)
"""End sites: their local rotation is always zero."""
ARM_DROP = math.radians(45.0)
"""Rest-pose angle of the arms below horizontal (A-pose)."""
FORWARD = (0.0, -1.0, 0.0)
"""The direction the canonical body faces."""


def joint(name: str) -> int:
    """Index of the joint called ``name``."""
    return JOINT_NAMES.index(name)


def humans_skeleton() -> Skeleton:
    """The skeleton every procedural human shares."""
    return Skeleton(JOINT_NAMES, PARENTS)


@dataclass(frozen=True)
class Proportions:
    """Body size: overall ``height`` (metres, head top above the soles at rest) and relative
    scales (1.0 = average) of the legs, arms, torso and the shoulder and hip widths."""

    height: float = 1.75
    leg: float = 1.0
    arm: float = 1.0
    torso: float = 1.0
    shoulders: float = 1.0
    hips: float = 1.0

    def landmarks(self) -> dict[str, float]:
        """Heights (z) and lengths, in metres, that the joints and body parts are built from."""
        h = self.height / self._nominal_height()
        ankle = 0.045 * h
        knee = ankle + 0.24 * h * self.leg
        hip = knee + 0.235 * h * self.leg
        pelvis = hip + 0.03 * h
        shoulder = pelvis + 0.27 * h * self.torso
        return {
            "unit": h,
            "ankle": ankle,
            "knee": knee,
            "hip": hip,
            "pelvis": pelvis,
            "spine": pelvis + 0.45 * (shoulder - pelvis),
            "shoulder": shoulder,
            "head": shoulder + 0.115 * h,
            "head_radius": 0.065 * h,
            "shoulder_half_width": 0.115 * h * self.shoulders,
            "hip_half_width": 0.055 * h * self.hips,
            "upper_arm": 0.17 * h * self.arm,
            "forearm": 0.15 * h * self.arm,
        }

    def _nominal_height(self) -> float:
        """Head-top height of a unit-sized body with these scales, so that the top lands on
        ``height`` (the sum of the vertical lengths in :meth:`landmarks`)."""
        return 0.045 + 0.475 * self.leg + 0.03 + 0.27 * self.torso + 0.115 + 0.065


def rest_joints(proportions: Proportions) -> Float[np.ndarray, "15 3"]:
    """Joint positions of the canonical A-pose (float64, metres)."""
    m = proportions.landmarks()
    joints = np.zeros((len(JOINT_NAMES), 3))
    joints[joint("pelvis")] = (0.0, 0.0, m["pelvis"])
    joints[joint("spine")] = (0.0, 0.0, m["spine"])
    joints[joint("head")] = (0.0, 0.0, m["head"])
    for side, sign in (("l", 1.0), ("r", -1.0)):
        arm = np.array([sign * math.cos(ARM_DROP), 0.0, -math.sin(ARM_DROP)])
        shoulder = np.array([sign * m["shoulder_half_width"], 0.0, m["shoulder"]])
        elbow = shoulder + m["upper_arm"] * arm
        joints[joint(f"{side}_shoulder")] = shoulder
        joints[joint(f"{side}_elbow")] = elbow
        joints[joint(f"{side}_wrist")] = elbow + m["forearm"] * arm
        x = sign * m["hip_half_width"]
        joints[joint(f"{side}_hip")] = (x, 0.0, m["hip"])
        joints[joint(f"{side}_knee")] = (x, 0.0, m["knee"])
        joints[joint(f"{side}_ankle")] = (x, 0.0, m["ankle"])
    return joints
