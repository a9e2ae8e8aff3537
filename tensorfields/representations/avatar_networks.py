"""The networks MIGS shares between identities: skinning field, non-rigid deformation, colour.

Each network's last layer starts at zero, so a fresh model is exactly the template posed by the
skinning prior with the template's colours; training learns corrections.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from tensorfields.core.skinning import distance_to_bones
from tensorfields.representations.shading import positional_encoding


def mlp(inputs: int, width: int, outputs: int, layers: int = 2) -> nn.Sequential:
    """``layers`` hidden ReLU layers of ``width``; the output layer starts at zero."""
    modules: list[nn.Module] = []
    size = inputs
    for _ in range(layers):
        modules += [nn.Linear(size, width), nn.ReLU(inplace=True)]
        size = width
    last = nn.Linear(size, outputs)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*modules, last)


def encode_points(points: Float[Tensor, "n 3"], frequencies: int) -> Float[Tensor, "n e"]:
    return torch.cat([points, positional_encoding(points, frequencies)], dim=-1)


class SkinningField(nn.Module):
    """LBS weights of canonical points: a softmax over joints of the nearest-bone prior's logits
    ``-(d / falloff)^2`` plus a learned, shared correction."""

    def __init__(self, n_joints: int, width: int = 64, frequencies: int = 4, falloff: float = 0.05):
        super().__init__()
        self.frequencies = frequencies
        self.falloff = falloff
        self.net = mlp(3 + 6 * frequencies, width, n_joints)

    def forward(
        self,
        points: Float[Tensor, "n 3"],
        rest_joints: Float[Tensor, "J 3"],
        parents: tuple[int, ...],
    ) -> tuple[Float[Tensor, "n J"], Float[Tensor, "n J"]]:
        """``(weights, correction)``: the correction's size is what the skinning loss keeps
        small (the prior plays SMPL's weights in MIGS's skinning loss)."""
        prior = -((distance_to_bones(points, rest_joints, parents) / self.falloff) ** 2)
        correction = self.net(encode_points(points, self.frequencies))
        return torch.softmax(prior + correction, dim=-1), correction


class DeformationNetwork(nn.Module):
    """Pose-conditioned non-rigid offsets of canonical points (cloth and flesh that LBS misses).

    The pose input is the local rotations of every joint but the root (axis-angle), so a body
    turning in place does not change its shape.
    """

    def __init__(
        self, n_joints: int, width: int = 64, frequencies: int = 4, pose_features: int = 16
    ):
        super().__init__()
        self.frequencies = frequencies
        self.pose_encoder = nn.Linear(3 * (n_joints - 1), pose_features)
        self.net = mlp(3 + 6 * frequencies + pose_features, width, 3)

    def forward(
        self, points: Float[Tensor, "n 3"], pose: Float[Tensor, "J 3"]
    ) -> Float[Tensor, "n 3"]:
        code = self.pose_encoder(pose[1:].reshape(1, -1)).expand(points.shape[0], -1)
        return self.net(torch.cat([encode_points(points, self.frequencies), code], dim=-1))


class ColourNetwork(nn.Module):
    """RGB of each Gaussian from its feature ``f`` and its identity's embedding."""

    def __init__(self, feature_dim: int, embedding_dim: int, width: int = 64):
        super().__init__()
        self.net = mlp(feature_dim + embedding_dim, width, 3, layers=1)

    def forward(
        self, features: Float[Tensor, "n f"], embedding: Float[Tensor, " e"]
    ) -> Float[Tensor, "n 3"]:
        code = embedding.expand(features.shape[0], -1)
        return torch.sigmoid(self.net(torch.cat([features, code], dim=-1)))
