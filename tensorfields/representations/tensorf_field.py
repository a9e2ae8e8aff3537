"""The TensoRF radiance field: a density decomposition, an appearance one and a shading head."""

from __future__ import annotations

import math

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from tensorfields.core.opaque import has_fused_density_pass
from tensorfields.representations.cp import CP
from tensorfields.representations.radiance_field import RadianceField
from tensorfields.representations.vm import VM


def make_decomposition(
    kind: str, components: int, resolution: tuple[int, int, int], init_scale: float
):
    if kind == "vm":
        return VM(components, resolution, init_scale)
    if kind == "cp":
        return CP(components, resolution, init_scale)
    raise ValueError(f"unknown decomposition {kind!r}; expected 'vm' or 'cp'")


class TensoRFField(RadianceField):
    """Density ``softplus(sum of density factors + shift)``; colour from ``MLP_Fea(basis(app))``.

    Points are world coordinates; the field maps its ``aabb`` to the factors' [-1, 1]^3.
    """

    def __init__(
        self,
        aabb: Float[Tensor, "6"],
        resolution: tuple[int, int, int],
        kind: str = "vm",
        density_components: int = 16,
        appearance_components: int = 48,
        appearance_dim: int = 27,
        init_scale: float = 0.1,
        **shading,
    ):
        """``shading``: the :class:`RadianceField` arguments (shift, PE, MLP width, precision)."""
        super().__init__(aabb, appearance_dim, **shading)
        self.density_field = make_decomposition(kind, density_components, resolution, init_scale)
        self.appearance_field = make_decomposition(
            kind, appearance_components, resolution, init_scale
        )
        self.basis = nn.Linear(self.appearance_field.output_dim, appearance_dim, bias=False)

    @property
    def resolution(self) -> tuple[int, int, int]:
        return self.density_field.resolution

    def normalize(self, xyz: Float[Tensor, "n 3"]) -> Float[Tensor, "n 3"]:
        return (xyz - self.aabb[:3]) / (self.aabb[3:] - self.aabb[:3]) * 2.0 - 1.0

    def density_features(
        self,
        xyz: Float[Tensor, "n 3"],
        reuse: Float[Tensor, " n"] | None = None,
        located: None = None,
    ) -> Float[Tensor, " n"]:
        """Summed density factors at world points (before the shift and softplus); ``reuse``
        is this function's no-grad result for the same points, so a differentiable pass after
        a no-grad one only pays for the backward."""
        return self.density_field.summed(self.normalize(xyz), reuse)

    def fused_density_pass(self, xyz: Float[Tensor, "s 3"]) -> bool:
        return isinstance(self.density_field, VM) and has_fused_density_pass(xyz)

    def density_transmittance(
        self,
        xyz: Float[Tensor, "s 3"],
        t_starts: Float[Tensor, " s"],
        t_ends: Float[Tensor, " s"],
        ray_indices: Int[Tensor, " s"],
        n_rays: int,
        scale: float,
        eps: float,
    ) -> tuple[Float[Tensor, " s"], Float[Tensor, " s"], None]:
        """VM density on a CPU: one native pass per ray that stops where the ray turns opaque
        (CP, a GPU or no native build: the generic two passes)."""
        if not self.fused_density_pass(xyz):
            return super().density_transmittance(
                xyz, t_starts, t_ends, ray_indices, n_rays, scale, eps
            )
        features, transmittance = self.density_field.summed_transmittance(
            self.normalize(xyz),
            t_starts,
            t_ends,
            ray_indices,
            n_rays,
            self.density_shift,
            scale,
            eps,
        )
        return features, transmittance, None

    def color(
        self, xyz: Float[Tensor, "n 3"], view_dirs: Float[Tensor, "n 3"], located: None = None
    ) -> Float[Tensor, "n 3"]:
        features = self.appearance_field.projected(self.normalize(xyz), self.basis.weight)
        return self.head(features, view_dirs)

    def voxel_size(self) -> Float[Tensor, "3"]:
        """Spacing of the factor grid's nodes (align_corners: ``size / (res - 1)``)."""
        res = torch.tensor(self.resolution, dtype=self.aabb.dtype, device=self.aabb.device)
        return (self.aabb[3:] - self.aabb[:3]) / (res - 1)

    def factor_parameters(self) -> list[nn.Parameter]:
        return list(self.density_field.parameters()) + list(self.appearance_field.parameters())

    def network_parameters(self) -> list[nn.Parameter]:
        return list(self.basis.parameters()) + list(self.head.parameters())

    def set_ranks(self, density: int, appearance: int) -> None:
        """Render with the first ``density`` / ``appearance`` components only (SlimmeRF)."""
        self.density_field.set_rank(density)
        self.appearance_field.set_rank(appearance)

    @torch.no_grad()
    def slim(self, density: int, appearance: int) -> None:
        """Drop every component above the given ranks; renders as ``set_ranks`` did."""
        kept = self.appearance_field.kept_features(appearance)
        self.density_field.slim(density)
        self.appearance_field.slim(appearance)
        weight = self.basis.weight.data[:, kept].clone()
        self.basis.weight = nn.Parameter(weight)
        self.basis.in_features = weight.shape[1]

    def resize(self, resolution: tuple[int, int, int]) -> None:
        self.density_field.resize(resolution)
        self.appearance_field.resize(resolution)

    @torch.no_grad()
    def crop(self, new_aabb: Float[Tensor, "6"]) -> None:
        """Shrink to the grid nodes enclosing ``new_aabb``; the field inside is unchanged."""
        unit = self.voxel_size()
        res = torch.tensor(self.resolution)
        lo = torch.floor((new_aabb[:3] - self.aabb[:3]) / unit + 1e-4).long().cpu()
        hi = torch.ceil((new_aabb[3:] - self.aabb[:3]) / unit - 1e-4).long().cpu()
        lo = lo.clamp(min=0)
        hi = torch.minimum(torch.maximum(hi, lo + 1), res - 1)
        lo = torch.minimum(lo, hi - 1)
        self.density_field.crop(tuple(lo.tolist()), tuple(hi.tolist()))
        self.appearance_field.crop(tuple(lo.tolist()), tuple(hi.tolist()))
        old_min = self.aabb[:3].clone()
        self.aabb[:3] = old_min + lo.to(unit) * unit
        self.aabb[3:] = old_min + hi.to(unit) * unit


def log_linear_voxel_counts(start: int, end: int, steps: int) -> list[int]:
    """Voxel counts growing log-linearly from ``start`` to ``end`` in ``steps`` (TensoRF)."""
    counts = torch.exp(torch.linspace(math.log(start), math.log(end), steps + 1))[1:]
    return [round(float(c)) for c in counts]


def resolution_for_voxels(aabb: Float[Tensor, "6"], n_voxels: int) -> tuple[int, int, int]:
    """Per-axis grid resolution with about ``n_voxels`` cubic voxels over ``aabb`` (official)."""
    size = aabb[3:] - aabb[:3]
    voxel = float((size.prod() / n_voxels) ** (1 / 3))
    return tuple(int(v) for v in (size / voxel).long().tolist())
