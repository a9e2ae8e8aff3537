"""A split of a scene: cameras plus the images they saw."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.data.cameras import Cameras


@dataclass
class SceneSplit:
    """Images (float32 RGB in [0, 1], already composited on the background) and their cameras.

    ``alphas`` holds each pixel's coverage (1 where the file had no alpha channel).
    """

    cameras: Cameras
    images: Float[Tensor, "n h w 3"]
    names: list[str]
    alphas: Float[Tensor, "n h w"] | None = None

    def __len__(self) -> int:
        return len(self.cameras)

    def subset(self, indices: list[int]) -> SceneSplit:
        index = torch.as_tensor(indices, dtype=torch.long)
        alphas = None if self.alphas is None else self.alphas[index]
        names = [self.names[i] for i in indices]
        return SceneSplit(self.cameras[index], self.images[index], names, alphas)
