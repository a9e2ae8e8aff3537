"""The Strivec radiance field: sparse local CP tri-vector tensors at several scales.

Each scale places cubes (half-extent ``R``) at tensor centres; a cube holds density and
appearance CP factors, three lines of ``nodes`` values per component, stored batched as
``(3, n_tensors, nodes, rank)`` parameters. A point's value at a scale mixes the K nearest cubes
covering it with inverse-distance weights; densities add up over scales, appearance features
go through each scale's basis and add up before the shared MLP_Fea head. A point that some scale
does not cover is empty space (density 0), as in the official code's ``filterall``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int
from torch import Tensor, nn

from tensorfields.core.local_tensors import (
    LocalScale,
    TensorIndex,
    build_tensor_index,
    covering_tensors,
    is_covered,
    local_cp_mix,
    local_cp_sums,
)
from tensorfields.core.opaque import has_fused_density_pass, local_cp_density_transmittance
from tensorfields.representations.radiance_field import RadianceField


@dataclass(frozen=True)
class Scale:
    """One scale of local tensors."""

    voxel: float
    """Voxel size the coarse points are grouped by: one tensor per occupied voxel."""
    half_extent: float
    """Half the side of each tensor's cube (larger than voxel / 2: neighbours overlap)."""
    density_rank: int
    appearance_rank: int


@dataclass(frozen=True)
class CoveringCubes:
    """Per scale, the K covering cubes of n points (id -1: none) and their IDW weights."""

    ids: list[Int[Tensor, "n k"]]
    weights: list[Float[Tensor, "n k"]]

    def __getitem__(self, index: Int[Tensor, " m"]) -> CoveringCubes:
        return CoveringCubes(
            [i.index_select(0, index) for i in self.ids],
            [w.index_select(0, index) for w in self.weights],
        )

    def covered(self) -> Bool[Tensor, " n"]:
        """Points some cube covers at every scale."""
        covered = self.ids[0][:, 0] >= 0
        for ids in self.ids[1:]:
            covered = covered & (ids[:, 0] >= 0)
        return covered


class StrivecField(RadianceField):
    """Density ``softplus(sum over scales + shift)`` (0 where uncovered); colour from MLP_Fea."""

    def __init__(
        self,
        aabb: Float[Tensor, "6"],
        scales: list[Scale],
        nodes: list[int],
        top_k: int = 4,
        appearance_dim: int = 27,
        init_scale: float = 0.2,
        **shading,
    ):
        """``shading``: the :class:`RadianceField` arguments (shift, PE, MLP width, precision)."""
        super().__init__(aabb, appearance_dim, **shading)
        if not scales or len(nodes) != len(scales) or min(nodes) < 2:
            raise ValueError(f"need one node count >= 2 per scale, got {nodes} for {len(scales)}")
        self.scales, self.top_k, self.init_scale = list(scales), top_k, init_scale
        # Until `place` runs, every scale has zero tensors (and covers nothing).
        pairs = list(zip(scales, nodes, strict=True))
        self.density_lines = nn.ParameterList(
            nn.Parameter(torch.zeros(3, 0, n, s.density_rank)) for s, n in pairs
        )
        self.appearance_lines = nn.ParameterList(
            nn.Parameter(torch.zeros(3, 0, n, s.appearance_rank)) for s, n in pairs
        )
        for level in range(len(scales)):
            self.register_buffer(f"centres_{level}", torch.zeros(0, 3))
        self.bases = nn.ModuleList(
            nn.Linear(s.appearance_rank, appearance_dim, bias=False) for s in scales
        )
        self._indices: list[TensorIndex] | None = None
        self._index_key: tuple | None = None

    # -- layout -----------------------------------------------------------------------------------
    def centres(self, level: int) -> Float[Tensor, "n 3"]:
        return getattr(self, f"centres_{level}")

    @property
    def counts(self) -> list[int]:
        return [self.centres(level).shape[0] for level in range(len(self.scales))]

    @property
    def nodes(self) -> list[int]:
        return [lines.shape[2] for lines in self.density_lines]

    @property
    def placed(self) -> bool:
        return sum(self.counts) > 0

    def voxel_size(self) -> Float[Tensor, "3"]:
        """Node spacing of the coarsest scale's lines (what the marching step follows, as in
        the official code)."""
        unit = 2 * self.scales[0].half_extent / (self.nodes[0] - 1)
        return torch.full((3,), unit, dtype=self.aabb.dtype, device=self.aabb.device)

    @property
    def resolution(self) -> tuple[int, int, int]:
        """Cells of that spacing across the box (for the occupancy grid)."""
        size = (self.aabb[3:] - self.aabb[:3]) / self.voxel_size()
        return tuple(max(int(v), 1) for v in torch.ceil(size).tolist())

    def factor_parameters(self) -> list[nn.Parameter]:
        return list(self.density_lines) + list(self.appearance_lines)

    def network_parameters(self) -> list[nn.Parameter]:
        return list(self.bases.parameters()) + list(self.head.parameters())

    @torch.no_grad()
    def place(self, centres: list[Float[Tensor, "n 3"]]) -> None:
        """Put fresh tensors (factors ``randn * init_scale``) at the given centres per scale."""
        if len(centres) != len(self.scales):
            raise ValueError(f"need centres for {len(self.scales)} scales, got {len(centres)}")
        device = self.aabb.device
        for level, points in enumerate(centres):
            setattr(self, f"centres_{level}", points.to(device=device, dtype=torch.float32))
            for lines in (self.density_lines, self.appearance_lines):
                _, _, nodes, rank = lines[level].shape
                fresh = self.init_scale * torch.randn(3, points.shape[0], nodes, rank)
                lines[level] = nn.Parameter(fresh.to(device))

    @torch.no_grad()
    def set_nodes(self, nodes: list[int]) -> None:
        """Resample every line to ``nodes[level]`` values (the represented function is kept)."""
        for lines in (self.density_lines, self.appearance_lines):
            for level, count in enumerate(nodes):
                old = lines[level].data
                three, n, _, rank = old.shape
                as_signal = old.permute(0, 1, 3, 2).reshape(three * n, rank, -1)
                if n > 0:
                    as_signal = F.interpolate(
                        as_signal, size=count, mode="linear", align_corners=True
                    )
                else:
                    as_signal = old.new_zeros(0, rank, count)
                new = as_signal.reshape(three, n, rank, count).permute(0, 1, 3, 2)
                lines[level] = nn.Parameter(new.contiguous())

    @torch.no_grad()
    def crop(self, new_aabb: Float[Tensor, "6"]) -> None:
        """Shrink the box; the tensors are local and stay as they are."""
        self.aabb.copy_(new_aabb.to(self.aabb))

    # -- queries ----------------------------------------------------------------------------------
    def indices(self) -> list[TensorIndex]:
        """Per scale, the grid of tensor ids (rebuilt when the centres change)."""
        centres = [self.centres(level) for level in range(len(self.scales))]
        key = tuple((c.data_ptr(), c.shape[0], str(c.device)) for c in centres)
        if self._indices is None or self._index_key != key:
            self._indices = [
                build_tensor_index(self.centres(level), s.half_extent, s.half_extent)
                for level, s in enumerate(self.scales)
            ]
            self._index_key = key
        return self._indices

    def locate(self, xyz: Float[Tensor, "n 3"]) -> CoveringCubes:
        """Each point's K nearest covering cubes and weights at every scale: found once per
        render and shared by the density passes and the colour."""
        ids, weights = [], []
        for level, scale in enumerate(self.scales):
            found = covering_tensors(
                xyz, self.centres(level), scale.half_extent, self.indices()[level], self.top_k
            )
            ids.append(found[0])
            weights.append(found[1])
        return CoveringCubes(ids, weights)

    def _mix(
        self, xyz: Float[Tensor, "n 3"], level: int, lines: Tensor, cubes: CoveringCubes
    ) -> Float[Tensor, "n r"]:
        """IDW mix of the K nearest covering tensors' component products at one scale."""
        scale = self.scales[level]
        ids, weights = cubes.ids[level], cubes.weights[level]
        return local_cp_mix(xyz, ids, weights, self.centres(level), scale.half_extent, lines)

    def coverage(self, xyz: Float[Tensor, "n 3"]) -> Bool[Tensor, " n"]:
        """Points covered at every scale (elsewhere the field is empty)."""
        covered = torch.ones(xyz.shape[0], dtype=torch.bool, device=xyz.device)
        for level, scale in enumerate(self.scales):
            index = self.indices()[level]
            covered &= is_covered(xyz, self.centres(level), scale.half_extent, index)
        return covered

    def density_features(
        self,
        xyz: Float[Tensor, "n 3"],
        reuse: Float[Tensor, " n"] | None = None,
        located: CoveringCubes | None = None,
    ) -> Float[Tensor, " n"]:
        """Density features summed over scales; -inf where some scale does not cover the point.
        ``reuse``: this result for these points from a no-grad pass (only the backward runs)."""
        cubes = self.locate(xyz) if located is None else located
        parts = [
            (cubes.ids[level], cubes.weights[level], self.centres(level), scale.half_extent, lines)
            for level, (scale, lines) in enumerate(
                zip(self.scales, self.density_lines, strict=True)
            )
        ]
        total = local_cp_sums(xyz, parts, reuse)
        return total.masked_fill(~cubes.covered(), float("-inf"))

    def fused_density_pass(self, xyz: Float[Tensor, "s 3"]) -> bool:
        return has_fused_density_pass(xyz)

    @torch.no_grad()
    def density_transmittance(
        self,
        xyz: Float[Tensor, "s 3"],
        t_starts: Float[Tensor, " s"],
        t_ends: Float[Tensor, " s"],
        ray_indices: Int[Tensor, " s"],
        n_rays: int,
        scale: float,
        eps: float,
    ) -> tuple[Float[Tensor, " s"], Float[Tensor, " s"], CoveringCubes]:
        """On a CPU: one native pass per ray that finds the cubes, the density and the
        transmittance, and stops where the ray turns opaque (a GPU or no native build: the
        generic passes over every sample)."""
        if not self.fused_density_pass(xyz):
            return super().density_transmittance(
                xyz, t_starts, t_ends, ray_indices, n_rays, scale, eps
            )
        scales = [
            LocalScale(self.centres(level), s.half_extent, index, lines)
            for level, (s, index, lines) in enumerate(
                zip(self.scales, self.indices(), self.density_lines, strict=True)
            )
        ]
        value, transmittance, ids, weights = local_cp_density_transmittance(
            xyz,
            scales,
            self.top_k,
            t_starts,
            t_ends,
            ray_indices,
            n_rays,
            self.density_shift,
            scale,
            eps,
        )
        return value, transmittance, CoveringCubes(ids, weights)

    def color(
        self,
        xyz: Float[Tensor, "n 3"],
        view_dirs: Float[Tensor, "n 3"],
        located: CoveringCubes | None = None,
    ) -> Float[Tensor, "n 3"]:
        cubes = self.locate(xyz) if located is None else located
        features = None
        for level, lines in enumerate(self.appearance_lines):
            projected = self.bases[level](self._mix(xyz, level, lines, cubes))
            features = projected if features is None else features + projected
        return self.head(features, view_dirs)

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())
