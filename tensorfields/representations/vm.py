"""TensoRF's vector-matrix (VM) decomposition of a 3D feature grid."""

from __future__ import annotations

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from tensorfields.core.interp import vm_interp, vm_interp_summed, vm_project
from tensorfields.core.opaque import vm_density_transmittance
from tensorfields.representations.grid_factors import LINE_AXES, PLANE_AXES, resize_factor
from tensorfields.representations.rank import RankedComponents


def _node_major(plane: Tensor) -> Tensor:
    """Planes are kept channels_last (the C values of a node side by side): the layout the
    native lookups read and write, so no per-step copies of the factors or their gradients."""
    return plane.contiguous(memory_format=torch.channels_last)


class VM(RankedComponents, nn.Module):
    """``sum_r P_r(u, v) * L_r(w)`` for the three (plane, line) pairs, ``C`` components each.

    Coordinates are normalised to [-1, 1]^3 by the caller. ``forward`` returns the per-pair
    products ``(n, 3, C)``; a density sums them, an appearance flattens them to ``3C`` features.
    With ``set_rank(r)`` only the first ``r`` components of each pair count (the planes are
    masked); ``slim(r)`` drops the others.
    """

    def __init__(self, components: int, resolution: tuple[int, int, int], init_scale: float = 0.1):
        super().__init__()
        self.components = components
        self.planes = nn.ParameterList()
        self.lines = nn.ParameterList()
        for (a, b), c in zip(PLANE_AXES, LINE_AXES, strict=True):
            shape_p = (1, components, resolution[b], resolution[a])
            self.planes.append(nn.Parameter(_node_major(init_scale * torch.randn(shape_p))))
            self.lines.append(
                nn.Parameter(init_scale * torch.randn(1, components, resolution[c], 1))
            )

    @property
    def resolution(self) -> tuple[int, int, int]:
        res = [0, 0, 0]
        for line, axis in zip(self.lines, LINE_AXES, strict=True):
            res[axis] = line.shape[2]
        return tuple(res)

    @property
    def output_dim(self) -> int:
        return 3 * self.components

    def forward(self, xyz: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3 c"]:
        # Fused native lookup where built, else grid_sample (tensorfields.core.interp).
        return vm_interp(xyz, self._planes(), list(self.lines))

    def features(self, xyz: Float[Tensor, "n 3"]) -> Float[Tensor, "n f"]:
        return self(xyz).flatten(1)

    def projected(
        self, xyz: Float[Tensor, "n 3"], basis: Float[Tensor, "f k"]
    ) -> Float[Tensor, "n f"]:
        """``features(xyz) @ basis.T`` in one fused pass where native (TensoRF's basis_mat)."""
        return vm_project(xyz, self._planes(), list(self.lines), basis)

    def summed(
        self, xyz: Float[Tensor, "n 3"], value: Float[Tensor, " n"] | None = None
    ) -> Float[Tensor, " n"]:
        """Sum over pairs and components; ``value`` reuses a no-grad result for these points."""
        return vm_interp_summed(xyz, self._planes(), list(self.lines), value)

    def summed_transmittance(
        self,
        xyz: Float[Tensor, "s 3"],
        t_starts: Float[Tensor, " s"],
        t_ends: Float[Tensor, " s"],
        ray_indices: Int[Tensor, " s"],
        n_rays: int,
        shift: float,
        scale: float,
        eps: float,
    ) -> tuple[Float[Tensor, " s"], Float[Tensor, " s"]]:
        """``summed`` at packed samples with the transmittance in front of each, both 0 where
        the ray is already opaque (:func:`vm_density_transmittance`); no gradient."""
        return vm_density_transmittance(
            xyz,
            self._planes(),
            list(self.lines),
            t_starts,
            t_ends,
            ray_indices,
            n_rays,
            shift,
            scale,
            eps,
        )

    def _planes(self) -> list[Tensor]:
        return [self.masked(plane) for plane in self.planes]

    def kept_features(self, rank: int) -> list[int]:
        """Indices of the ``features`` columns of the first ``rank`` components."""
        return [i * self.components + c for i in range(3) for c in range(rank)]

    def slim(self, rank: int) -> None:
        """Drop every component but the first ``rank`` of each pair, for good."""
        self.set_rank(rank)
        self.slim_factors(self.planes, rank)
        self.slim_factors(self.lines, rank)
        self.components, self._rank = rank, None

    @torch.no_grad()
    def resize(self, resolution: tuple[int, int, int]) -> None:
        """Resample every factor to a new grid resolution (bilinear, align_corners)."""
        for plane, line, (a, b), c in zip(
            self.planes, self.lines, PLANE_AXES, LINE_AXES, strict=True
        ):
            plane.data = _node_major(resize_factor(plane, (resolution[b], resolution[a])))
            line.data = resize_factor(line, (resolution[c], 1))

    @torch.no_grad()
    def crop(self, lo: tuple[int, int, int], hi: tuple[int, int, int]) -> None:
        """Keep grid nodes ``lo[i]..hi[i]`` (inclusive) along each axis."""
        for plane, line, (a, b), c in zip(
            self.planes, self.lines, PLANE_AXES, LINE_AXES, strict=True
        ):
            plane.data = _node_major(plane.data[:, :, lo[b] : hi[b] + 1, lo[a] : hi[a] + 1])
            line.data = line.data[:, :, lo[c] : hi[c] + 1].contiguous()
