"""Training batches, one kind per family: rays for ray marching, whole images for splats."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.data.cameras import Cameras


@dataclass
class RayBatch:
    """Rays (world-space origins, unit directions) and the colours their pixels hold."""

    origins: Float[Tensor, "n 3"]
    directions: Float[Tensor, "n 3"]
    target: Float[Tensor, "n 3"]

    def to(self, device: torch.device) -> RayBatch:
        return RayBatch(self.origins.to(device), self.directions.to(device), self.target.to(device))


@dataclass
class ImageBatch:
    """Whole images and the cameras that took them."""

    cameras: Cameras
    target: Float[Tensor, "cams h w 3"]

    def to(self, device: torch.device) -> ImageBatch:
        return ImageBatch(self.cameras.to(device), self.target.to(device))


@dataclass
class FrameBatch(ImageBatch):
    """One frame of an articulated body: the image, its mask, who it is and how they stand."""

    alpha: Float[Tensor, "cams h w"]
    identity: int
    pose: Float[Tensor, "J 3"]
    bone_transforms: Float[Tensor, "J 4 4"]
    rest_joints: Float[Tensor, "J 3"]

    def to(self, device: torch.device) -> FrameBatch:
        return FrameBatch(
            self.cameras.to(device),
            self.target.to(device),
            self.alpha.to(device),
            self.identity,
            self.pose.to(device),
            self.bone_transforms.to(device),
            self.rest_joints.to(device),
        )
