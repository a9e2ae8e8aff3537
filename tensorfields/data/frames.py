"""Monocular videos of articulated bodies: frames of several identities with their poses.

A :class:`FrameSplit` is a :class:`SceneSplit` (one camera and image per frame, ``alphas`` the
foreground masks) plus, per frame, who is in it and how they stand: the identity index, the
local joint rotations (axis-angle) and the bone transforms that carry that identity's canonical
(rest-pose) body to the frame's posed body in world space (see :mod:`tensorfields.core.skinning`).
Both the procedural humans dataset and the ZJU-MoCap loader produce it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor

from tensorfields.core.skinning import check_parents
from tensorfields.data.dataset import SceneSplit


@dataclass(frozen=True)
class Skeleton:
    """Joint names and parent indices (-1 for the root; parents before children)."""

    names: tuple[str, ...]
    parents: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.parents):
            raise ValueError(f"{len(self.names)} joint names but {len(self.parents)} parents")
        check_parents(self.parents)

    def __len__(self) -> int:
        return len(self.parents)


@dataclass
class FrameSplit(SceneSplit):
    """Frames of monocular videos; field ``i`` of each per-frame tensor belongs to frame ``i``."""

    identity: Int[Tensor, " n"] | None = None
    """Index into ``identity_names`` / ``rest_joints`` of the body in each frame."""
    pose: Float[Tensor, "n J 3"] | None = None
    """Local joint rotations (axis-angle, radians); joint 0 is the global orientation."""
    bone_transforms: Float[Tensor, "n J 4 4"] | None = None
    """Canonical -> posed world transform of each bone (SMPL's ``A``, global motion included)."""
    identity_names: list[str] = dataclasses.field(default_factory=list)
    rest_joints: Float[Tensor, "ids J 3"] | None = None
    """Each identity's joints in its canonical (rest) pose."""
    skeleton: Skeleton | None = None

    def __post_init__(self) -> None:
        n = len(self.cameras)
        if self.skeleton is None or self.rest_joints is None:
            raise ValueError("a FrameSplit needs its skeleton and the identities' rest joints")
        J = len(self.skeleton)
        expected = {
            "images": (self.images, (n, self.cameras.height, self.cameras.width, 3)),
            "alphas": (self.alphas, (n, self.cameras.height, self.cameras.width)),
            "identity": (self.identity, (n,)),
            "pose": (self.pose, (n, J, 3)),
            "bone_transforms": (self.bone_transforms, (n, J, 4, 4)),
            "rest_joints": (self.rest_joints, (len(self.identity_names), J, 3)),
        }
        for name, (tensor, shape) in expected.items():
            if tensor is None or tuple(tensor.shape) != shape:
                got = None if tensor is None else tuple(tensor.shape)
                raise ValueError(f"FrameSplit.{name} must have shape {shape}, got {got}")
        if n and int(self.identity.min()) < 0:
            raise ValueError("FrameSplit.identity holds negative indices")
        if n and int(self.identity.max()) >= len(self.identity_names):
            raise ValueError(
                f"FrameSplit.identity refers to identity {int(self.identity.max())}, but only "
                f"{len(self.identity_names)} are named"
            )

    @property
    def n_identities(self) -> int:
        return len(self.identity_names)

    def subset(self, indices: list[int]) -> FrameSplit:
        index = torch.as_tensor(indices, dtype=torch.long)
        return dataclasses.replace(
            self,
            cameras=self.cameras[index],
            images=self.images[index],
            names=[self.names[i] for i in indices],
            alphas=self.alphas[index],
            identity=self.identity[index],
            pose=self.pose[index],
            bone_transforms=self.bone_transforms[index],
        )

    def of_identity(self, identity: int) -> FrameSplit:
        """The frames of one identity, as a one-identity split (its index becomes 0)."""
        if not 0 <= identity < self.n_identities:
            raise ValueError(f"identity {identity} out of range 0..{self.n_identities - 1}")
        frames = self.subset(torch.nonzero(self.identity == identity)[:, 0].tolist())
        return dataclasses.replace(
            frames,
            identity=torch.zeros_like(frames.identity),
            identity_names=[self.identity_names[identity]],
            rest_joints=self.rest_joints[identity : identity + 1],
        )
