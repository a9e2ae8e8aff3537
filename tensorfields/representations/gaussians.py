"""A set of 3D Gaussians: raw parameters in one ``ParameterDict`` (the layout gsplat's
densification strategies edit in place), activated on demand.

Raw parameters, as 3DGS stores them: ``means (n, 3)``, ``scales (n, 3)`` (log standard
deviations), ``quats (n, 4)`` (w, x, y, z, unnormalised), ``opacities (n)`` (logits),
``sh0 (n, 1, 3)`` and ``shN (n, K-1, 3)`` (SH coefficients, K = (degree + 1)²).
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor, nn

from tensorfields.core.projection import rgb_to_sh

PARAMETER_NAMES = ("means", "scales", "quats", "opacities", "sh0", "shN")


def mean_neighbour_distance(points: Float[Tensor, "n 3"], k: int = 3, chunk: int = 512) -> Tensor:
    """Mean distance of each point to its ``k`` nearest others (3DGS's initial scale); a brute
    force in row chunks (O(n²): about 30 s for 100k points on 2 cores, once per run)."""
    n = points.shape[0]
    if n <= 1:
        return torch.ones(n, dtype=points.dtype, device=points.device)
    k = min(k, n - 1)
    out = []
    for start in range(0, n, chunk):
        d = torch.cdist(points[start : start + chunk], points)
        nearest = d.topk(k + 1, dim=1, largest=False).values[:, 1:]  # drop the point itself
        out.append(nearest.mean(1))
    return torch.cat(out)


class GaussianSet(nn.Module):
    """Gaussians with SH colour up to ``sh_degree``; see the module docstring for the layout."""

    def __init__(self, raw: dict[str, Tensor], sh_degree: int):
        super().__init__()
        if not 0 <= sh_degree <= 3:
            raise ValueError(f"sh_degree must be 0-3, got {sh_degree}")
        missing = [name for name in PARAMETER_NAMES if name not in raw]
        if missing:
            raise ValueError(f"Gaussian parameters missing: {missing}")
        n, coeffs = raw["means"].shape[0], (sh_degree + 1) ** 2
        shN = raw["shN"]
        if shN.shape[1] < coeffs - 1:  # fewer SH bands given (e.g. a degree-0 PLY): zeros
            pad = shN.new_zeros(n, coeffs - 1 - shN.shape[1], 3)
            shN = torch.cat([shN, pad], dim=1)
        raw = {**raw, "shN": shN[:, : coeffs - 1]}
        for name, shape in {
            "means": (n, 3),
            "scales": (n, 3),
            "quats": (n, 4),
            "opacities": (n,),
            "sh0": (n, 1, 3),
            "shN": (n, coeffs - 1, 3),
        }.items():
            if tuple(raw[name].shape) != shape:
                raise ValueError(f"{name} must have shape {shape}, got {tuple(raw[name].shape)}")
        self.sh_degree = sh_degree
        self.params = nn.ParameterDict(
            {name: nn.Parameter(raw[name].detach().float().clone()) for name in PARAMETER_NAMES}
        )

    @classmethod
    def from_points(
        cls,
        points: Float[Tensor, "n 3"],
        colors: Float[Tensor, "n 3"],
        sh_degree: int,
        opacity: float = 0.1,
        scale_factor: float = 1.0,
    ) -> GaussianSet:
        """Isotropic Gaussians at ``points`` sized by their neighbours (3DGS initialisation)."""
        n = points.shape[0]
        if n == 0:
            raise ValueError("cannot initialise Gaussians from an empty point set")
        distance = mean_neighbour_distance(points).clamp(min=1e-7) * scale_factor
        raw = {
            "means": points,
            "scales": distance.log()[:, None].repeat(1, 3),
            "quats": torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1),
            "opacities": torch.logit(torch.full((n,), opacity)),
            "sh0": rgb_to_sh(colors)[:, None, :],
            "shN": torch.zeros(n, (sh_degree + 1) ** 2 - 1, 3),
        }
        return cls(raw, sh_degree)

    @classmethod
    def random_in_box(
        cls, count: int, aabb: Float[Tensor, "6"], sh_degree: int, seed: int = 0, **kwargs
    ) -> GaussianSet:
        """``count`` Gaussians uniformly in the box with random colours (Blender scenes have no
        SfM points; 3DGS does the same)."""
        g = torch.Generator().manual_seed(seed)
        low, high = aabb[:3], aabb[3:]
        points = low + (high - low) * torch.rand(count, 3, generator=g)
        colors = torch.rand(count, 3, generator=g)
        return cls.from_points(points, colors, sh_degree, **kwargs)

    def __len__(self) -> int:
        return self.params["means"].shape[0]

    def gaussians(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(means, quats, scales, opacities, sh coefficients (n, K, 3))``, rasterizer-ready."""
        p = self.params
        sh = torch.cat([p["sh0"], p["shN"]], dim=1)
        return p["means"], p["quats"], p["scales"].exp(), torch.sigmoid(p["opacities"]), sh

    def raw(self) -> dict[str, Tensor]:
        """The raw parameters (detached), e.g. for PLY export."""
        return {name: p.detach() for name, p in self.params.items()}

    def load_raw(self, raw: dict[str, Tensor]) -> None:
        """Replace every parameter (the count may change), keeping device and dtype."""
        device = self.params["means"].device
        fresh = GaussianSet(raw, self.sh_degree)
        for name in PARAMETER_NAMES:
            self.params[name] = nn.Parameter(fresh.params[name].data.to(device))
