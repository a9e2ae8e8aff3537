"""Gaussian parameters of many identities in one (identities x Gaussians x attributes) tensor.

Each row is ``[mean (3), log-scale (3), quaternion (4), feature f (F), opacity logit (1)]``
(MIGS's layout). :class:`CPGaussianTensor` stores the tensor only as its CP factors and rebuilds
one identity's Gaussians per step; :class:`DenseGaussianTensor` stores every entry (the
per-identity baseline). Both start every identity from one template.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from jaxtyping import Float
from torch import Tensor, nn

from tensorfields.core.cp_decomposition import cp_full, cp_slice, low_rank_template


class CanonicalGaussians(NamedTuple):
    """One identity's Gaussians in its canonical (rest-pose) space, raw (unactivated)."""

    means: Float[Tensor, "n 3"]
    log_scales: Float[Tensor, "n 3"]
    quats: Float[Tensor, "n 4"]
    features: Float[Tensor, "n f"]
    opacity_logits: Float[Tensor, " n"]


def attribute_count(feature_dim: int) -> int:
    """Columns of a Gaussian row: 3 + 3 + 4 + F + 1."""
    return 11 + feature_dim


def split_attributes(rows: Float[Tensor, "n m"]) -> CanonicalGaussians:
    """Cut rows in the MIGS layout into named attributes."""
    if rows.shape[-1] < 12:
        raise ValueError(f"Gaussian rows need at least 12 columns, got {rows.shape[-1]}")
    return CanonicalGaussians(
        rows[:, 0:3], rows[:, 3:6], rows[:, 6:10], rows[:, 10:-1], rows[:, -1]
    )


def join_attributes(gaussians: CanonicalGaussians) -> Float[Tensor, "n m"]:
    """The inverse of :func:`split_attributes`."""
    g = gaussians
    return torch.cat([g.means, g.log_scales, g.quats, g.features, g.opacity_logits[:, None]], dim=1)


class CPGaussianTensor(nn.Module):
    """``W[i, g, m] = sum_r U2[i, r] U3[g, r] U1[m, r]``, stored as the three factors only."""

    def __init__(self, template: Float[Tensor, "g m"], n_identities: int, rank: int):
        super().__init__()
        u1, u2, u3 = low_rank_template(template, rank, n_identities)
        self.u1 = nn.Parameter(u1)  # attributes x R
        self.u2 = nn.Parameter(u2)  # identities x R
        self.u3 = nn.Parameter(u3)  # Gaussians x R

    @property
    def n_identities(self) -> int:
        return self.u2.shape[0]

    @property
    def n_gaussians(self) -> int:
        return self.u3.shape[0]

    def identity(self, index: int) -> Float[Tensor, "g m"]:
        """One identity's rows, rebuilt from the factors."""
        return cp_slice(self.u1, self.u2[index], self.u3)

    def full(self) -> Float[Tensor, "i g m"]:
        return cp_full(self.u1, self.u2, self.u3)

    def add_identities(self, count: int) -> None:
        """New identities start as the mean of the known ones' rows (then get fitted)."""
        rows = self.u2.detach().mean(0, keepdim=True).expand(count, -1)
        self.u2 = nn.Parameter(torch.cat([self.u2.detach(), rows]))

    def shared_parameters(self) -> list[nn.Parameter]:
        """What all identities share (frozen when a new identity is fitted)."""
        return [self.u1, self.u3]

    def identity_parameters(self) -> list[nn.Parameter]:
        return [self.u2]


class DenseGaussianTensor(nn.Module):
    """Every entry of the tensor stored: N separate Gaussian sets (the per-identity baseline)."""

    def __init__(self, template: Float[Tensor, "g m"], n_identities: int):
        super().__init__()
        self.rows = nn.Parameter(template[None].repeat(n_identities, 1, 1).clone())

    @property
    def n_identities(self) -> int:
        return self.rows.shape[0]

    @property
    def n_gaussians(self) -> int:
        return self.rows.shape[1]

    def identity(self, index: int) -> Float[Tensor, "g m"]:
        return self.rows[index]

    def full(self) -> Float[Tensor, "i g m"]:
        return self.rows

    def add_identities(self, count: int) -> None:
        rows = self.rows.detach().mean(0, keepdim=True).expand(count, -1, -1)
        self.rows = nn.Parameter(torch.cat([self.rows.detach(), rows]))

    def shared_parameters(self) -> list[nn.Parameter]:
        return []

    def identity_parameters(self) -> list[nn.Parameter]:
        return [self.rows]
