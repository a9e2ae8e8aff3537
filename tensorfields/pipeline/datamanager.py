"""Serves training batches: shuffled rays (ray marching) or shuffled whole images (splats;
with their poses for articulated bodies).

Rays are never materialised for the whole dataset (the official TensoRF code holds every ray in
memory); a batch is a set of flat pixel indices turned into rays when asked for.
"""

from __future__ import annotations

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from tensorfields.data.batches import FrameBatch, ImageBatch, RayBatch
from tensorfields.data.dataset import SceneSplit
from tensorfields.data.frames import FrameSplit


class RayDataManager:
    """Epoch-wise shuffled pixel batches over the training images (TensoRF's SimpleSampler)."""

    def __init__(self, split: SceneSplit, batch_size: int, seed: int = 0):
        self.split = split
        self.batch_size = batch_size
        self.n_images, self.height, self.width = split.images.shape[:3]
        self.pixels = split.images.reshape(-1, 3)
        self.active = torch.arange(self.pixels.shape[0])
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.long)
        self.cursor = 0

    def __len__(self) -> int:
        return self.active.numel()

    @property
    def rays_per_batch(self) -> int:
        return self.batch_size

    def rays_for(self, flat: Tensor) -> tuple[Float[Tensor, "n 3"], Float[Tensor, "n 3"]]:
        per_image = self.height * self.width
        image, pixel = flat // per_image, flat % per_image
        return self.split.cameras.rays_for_pixels(image, pixel // self.width, pixel % self.width)

    def next_batch(self) -> RayBatch:
        """The next ``batch_size`` rays and their pixels' colours."""
        if self.cursor + self.batch_size > self.order.numel():
            self.order = self.active[torch.randperm(self.active.numel(), generator=self.generator)]
            self.cursor = 0
        flat = self.order[self.cursor : self.cursor + self.batch_size]
        self.cursor += self.batch_size
        origins, directions = self.rays_for(flat)
        return RayBatch(origins, directions, self.pixels[flat])

    def keep_pixels(self, mask: Bool[Tensor, "n h w"]) -> None:
        """Keep only the training rays of pixels where ``mask`` is True (ray filtering)."""
        keep = mask.reshape(-1).to(self.active.device)[self.active]
        before = self.active.numel()
        if not keep.any():
            print("Ray filtering skipped: no training ray passes through the occupied space")
            return
        self.active = self.active[keep]
        self.order = torch.empty(0, dtype=torch.long)
        self.cursor = 0
        print(f"Ray filtering: kept {self.active.numel()} of {before} training rays")

    def state_dict(self) -> dict:
        return {
            "active": self.active,
            "order": self.order,
            "cursor": self.cursor,
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.active = state["active"]
        self.order = state["order"]
        self.cursor = state["cursor"]
        self.generator.set_state(state["generator"])


class ImageDataManager:
    """One whole training image per batch, in an order reshuffled every epoch (3DGS)."""

    def __init__(self, split: SceneSplit, seed: int = 0):
        self.split = split
        self.generator = torch.Generator().manual_seed(seed)
        self.order = torch.empty(0, dtype=torch.long)
        self.cursor = 0

    def __len__(self) -> int:
        return len(self.split)

    @property
    def rays_per_batch(self) -> int:
        return self.split.cameras.width * self.split.cameras.height

    def next_batch(self) -> ImageBatch:
        if self.cursor >= self.order.numel():
            self.order = torch.randperm(len(self.split), generator=self.generator)
            self.cursor = 0
        index = int(self.order[self.cursor])
        self.cursor += 1
        return image_batch(self.split, index)

    def state_dict(self) -> dict:
        return {"order": self.order, "cursor": self.cursor, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.order = state["order"]
        self.cursor = state["cursor"]
        self.generator.set_state(state["generator"])


def image_batch(split: SceneSplit, index: int) -> ImageBatch:
    """View ``index`` of ``split`` as a batch; frames of articulated bodies bring their pose."""
    cameras, images = split.cameras[index], split.images[index : index + 1]
    if not isinstance(split, FrameSplit):
        return ImageBatch(cameras, images)
    identity = int(split.identity[index])
    return FrameBatch(
        cameras,
        images,
        split.alphas[index : index + 1],
        identity,
        split.pose[index],
        split.bone_transforms[index],
        split.rest_joints[identity],
    )


def make_datamanager(
    kind: str, split: SceneSplit, batch_size: int, seed: int = 0
) -> RayDataManager | ImageDataManager:
    """The data manager for a model's ``data_kind``."""
    if kind == "rays":
        return RayDataManager(split, batch_size, seed=seed)
    if kind == "images":
        return ImageDataManager(split, seed=seed)
    raise ValueError(f"unknown data kind {kind!r} (expected 'rays' or 'images')")
