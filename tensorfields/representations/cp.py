"""CANDECOMP/PARAFAC (CP) decomposition of a 3D feature grid: sums of rank-one tensors."""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from tensorfields.core.interp import cp_interp
from tensorfields.representations.grid_factors import resize_factor
from tensorfields.representations.rank import RankedComponents


class CP(RankedComponents, nn.Module):
    """``sum_r X_r(x) * Y_r(y) * Z_r(z)`` with ``C`` components; coordinates in [-1, 1]^3.

    ``forward`` returns the per-component products ``(n, C)``. With ``set_rank(r)`` only the
    first ``r`` components count (the x lines are masked); ``slim(r)`` drops the others.
    """

    def __init__(self, components: int, resolution: tuple[int, int, int], init_scale: float = 0.2):
        super().__init__()
        self.components = components
        self.lines = nn.ParameterList(
            nn.Parameter(init_scale * torch.randn(1, components, resolution[axis], 1))
            for axis in range(3)
        )

    @property
    def resolution(self) -> tuple[int, int, int]:
        return tuple(line.shape[2] for line in self.lines)

    @property
    def output_dim(self) -> int:
        return self.components

    def forward(self, xyz: Float[Tensor, "n 3"]) -> Float[Tensor, "n c"]:
        # Fused native lookup where built, else grid_sample (tensorfields.core.interp).
        lines = list(self.lines)
        return cp_interp(xyz, [self.masked(lines[0]), *lines[1:]])

    def features(self, xyz: Float[Tensor, "n 3"]) -> Float[Tensor, "n c"]:
        return self(xyz)

    def projected(
        self, xyz: Float[Tensor, "n 3"], basis: Float[Tensor, "f k"]
    ) -> Float[Tensor, "n f"]:
        """``features(xyz) @ basis.T`` (TensoRF's basis_mat)."""
        return self.features(xyz) @ basis.t()

    def summed(
        self, xyz: Float[Tensor, "n 3"], value: Float[Tensor, " n"] | None = None
    ) -> Float[Tensor, " n"]:
        """Sum over components. ``value`` (a no-grad result, reused by VM) is recomputed here:
        CP's lookups are cheap."""
        return self(xyz).sum(dim=1)

    def kept_features(self, rank: int) -> list[int]:
        """Indices of the ``features`` columns of the first ``rank`` components."""
        return list(range(rank))

    def slim(self, rank: int) -> None:
        """Drop every component but the first ``rank``, for good."""
        self.set_rank(rank)
        self.slim_factors(self.lines, rank)
        self.components, self._rank = rank, None

    @torch.no_grad()
    def resize(self, resolution: tuple[int, int, int]) -> None:
        for axis, line in enumerate(self.lines):
            line.data = resize_factor(line, (resolution[axis], 1))

    @torch.no_grad()
    def crop(self, lo: tuple[int, int, int], hi: tuple[int, int, int]) -> None:
        for axis, line in enumerate(self.lines):
            line.data = line.data[:, :, lo[axis] : hi[axis] + 1].contiguous()
