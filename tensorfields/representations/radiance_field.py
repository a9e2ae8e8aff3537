"""What every field of the TensoRF family shares: the box, density activation, MLP_Fea head."""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn

from tensorfields.core.render import render_transmittance
from tensorfields.representations.shading import MLPFeaHead, Precision


class Located(Protocol):
    """What :meth:`RadianceField.locate` returns: lookups for n points; ``located[index]``
    keeps the points at ``index`` (int64 positions)."""

    def __getitem__(self, index: Int[Tensor, " m"]) -> Located: ...


class RadianceField(nn.Module):
    """Density ``softplus(features + shift)``; colour from appearance features through the
    ``MLP_Fea`` head. Subclasses provide ``density_features`` and ``color``."""

    def __init__(
        self,
        aabb: Float[Tensor, "6"],
        appearance_dim: int = 27,
        density_shift: float = -10.0,
        feature_pe: int = 2,
        view_pe: int = 2,
        hidden: int = 128,
        shading_precision: Precision = "float32",
    ):
        super().__init__()
        self.register_buffer("aabb", torch.as_tensor(aabb, dtype=torch.float32).clone())
        self.density_shift = density_shift
        self.head = MLPFeaHead(appearance_dim, feature_pe, view_pe, hidden, shading_precision)

    def locate(self, xyz: Float[Tensor, "n 3"]) -> Located | None:
        """Per-point lookups that ``density_features`` and ``color`` can share across the passes
        of one render (sliced with a boolean mask as samples drop out); None when the field has
        nothing worth sharing."""
        return None

    def density_features(
        self,
        xyz: Float[Tensor, "n 3"],
        reuse: Float[Tensor, " n"] | None = None,
        located: Located | None = None,
    ) -> Float[Tensor, " n"]:
        raise NotImplementedError

    def fused_density_pass(self, xyz: Float[Tensor, "s 3"]) -> bool:
        """Whether :meth:`density_transmittance` is one pass per ray that stops where the ray
        turns opaque (worth running without gradients too); else it is the generic passes over
        every sample."""
        return False

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
    ) -> tuple[Float[Tensor, " s"], Float[Tensor, " s"], Located | None]:
        """No-grad: density features of packed samples (``reuse`` for ``density_features``),
        the transmittance in front of each, compositing ``density * scale``, and the samples'
        lookups (:meth:`locate`) for the passes after this one. From the first sample of a ray
        with transmittance below ``eps`` on, the transmittance is 0 (and the features and
        lookups are unused). Fields with a fused pass that stops at that point override this."""
        located = self.locate(xyz)
        features = self.density_features(xyz, located=located)
        _, transmittance = render_transmittance(
            self.density_from_features(features) * scale,
            t_starts,
            t_ends,
            ray_indices,
            n_rays,
            early_stop_eps=eps,
        )
        return features, transmittance, located

    def density_from_features(self, features: Float[Tensor, " n"]) -> Float[Tensor, " n"]:
        return F.softplus(features + self.density_shift)

    def density(self, xyz: Float[Tensor, "n 3"]) -> Float[Tensor, " n"]:
        """Volume density at world points (before TensoRF's distance scale)."""
        return self.density_from_features(self.density_features(xyz))
