"""TensoRF's shading head ``MLP_Fea``: appearance features + view direction -> RGB."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn


def positional_encoding(x: Float[Tensor, "n d"], frequencies: int) -> Float[Tensor, "n e"]:
    """``[sin(2^k x), cos(2^k x)]`` for k < frequencies, laid out as in the official code."""
    bands = 2.0 ** torch.arange(frequencies, device=x.device, dtype=x.dtype)
    scaled = (x[..., None] * bands).flatten(-2)
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=-1)


class MLPFeaHead(nn.Module):
    """Input: features, view dir, PE(features), PE(view dir) -> hidden -> hidden -> sigmoid RGB."""

    def __init__(
        self, in_features: int = 27, feature_pe: int = 2, view_pe: int = 2, hidden: int = 128
    ):
        super().__init__()
        self.feature_pe, self.view_pe = feature_pe, view_pe
        in_dim = in_features + 3 + 2 * feature_pe * in_features + 2 * view_pe * 3
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, 3),
        )
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(
        self, features: Float[Tensor, "n f"], view_dirs: Float[Tensor, "n 3"]
    ) -> Float[Tensor, "n 3"]:
        parts = [features, view_dirs]
        if self.feature_pe > 0:
            parts.append(positional_encoding(features, self.feature_pe))
        if self.view_pe > 0:
            parts.append(positional_encoding(view_dirs, self.view_pe))
        return torch.sigmoid(self.mlp(torch.cat(parts, dim=-1)))
