"""Third-order CP (CANDECOMP/PARAFAC) tensors: rebuild, alternating least squares, row fits.

Factor names follow MIGS: a tensor ``W`` of shape (identities, items, attributes) is
``W[i, g, m] = sum_r U2[i, r] * U3[g, r] * U1[m, r]`` with ``U1`` (attributes x R),
``U2`` (identities x R) and ``U3`` (items x R); one identity's slice is
``U3 @ diag(U2[i]) @ U1^T``, i.e. ``U3 @ khatri_rao(U2, U1)^T`` reshaped.
"""

from __future__ import annotations

import torch
from jaxtyping import Float
from torch import Tensor


def khatri_rao(a: Float[Tensor, "p r"], b: Float[Tensor, "q r"]) -> Float[Tensor, "pq r"]:
    """Column-wise Kronecker product: row ``i * q + j`` is ``a[i] * b[j]``."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"factors need the same rank, got {a.shape[1]} and {b.shape[1]}")
    return (a[:, None, :] * b[None, :, :]).reshape(-1, a.shape[1])


def cp_slice(
    u1: Float[Tensor, "m r"], u2_row: Float[Tensor, " r"], u3: Float[Tensor, "g r"]
) -> Float[Tensor, "g m"]:
    """One identity's (items x attributes) slice: ``U3 diag(u2_row) U1^T``."""
    return (u3 * u2_row) @ u1.T


def cp_full(
    u1: Float[Tensor, "m r"], u2: Float[Tensor, "i r"], u3: Float[Tensor, "g r"]
) -> Float[Tensor, "i g m"]:
    """The whole (identities x items x attributes) tensor."""
    return torch.einsum("ir,gr,mr->igm", u2, u3, u1)


def unfold(tensor: Float[Tensor, "i g m"], mode: int) -> Tensor:
    """Mode-``mode`` unfolding, columns ordered to match :func:`khatri_rao` of the other two
    factors in (first, second) order of the remaining modes."""
    return tensor.movedim(mode, 0).reshape(tensor.shape[mode], -1)


def cp_als(
    tensor: Float[Tensor, "i g m"], rank: int, iterations: int = 200, seed: int = 0
) -> tuple[Float[Tensor, "m r"], Float[Tensor, "i r"], Float[Tensor, "g r"]]:
    """``(U1, U2, U3)`` of a rank-``rank`` CP fit by alternating least squares (float64)."""
    if tensor.ndim != 3:
        raise ValueError(f"cp_als needs a 3rd-order tensor, got shape {tuple(tensor.shape)}")
    x = tensor.double()
    g = torch.Generator().manual_seed(seed)
    factors = [torch.randn(n, rank, generator=g, dtype=torch.float64) for n in x.shape]
    for _ in range(iterations):
        for mode in range(3):
            a, b = (factors[k] for k in range(3) if k != mode)
            # X_(mode) = F_mode (A ⊙ B)^T; the normal equations' Gram is the Hadamard product.
            gram = (a.T @ a) * (b.T @ b)
            rhs = unfold(x, mode) @ khatri_rao(a, b)
            factors[mode] = torch.linalg.lstsq(gram, rhs.T).solution.T
    u2, u3, u1 = factors
    return u1.to(tensor.dtype), u2.to(tensor.dtype), u3.to(tensor.dtype)


def fit_identity_row(
    u1: Float[Tensor, "m r"], u3: Float[Tensor, "g r"], target: Float[Tensor, "g m"]
) -> Float[Tensor, " r"]:
    """The identity row ``c`` minimising ``|U3 diag(c) U1^T - target|^2`` (closed form: the
    other factors stay fixed, as when a new identity joins a trained MIGS tensor)."""
    design = khatri_rao(u3.double(), u1.double())  # (g*m, r): column r is vec(u3_r u1_r^T)
    solution = torch.linalg.lstsq(design, target.double().reshape(-1, 1)).solution
    return solution[:, 0].to(target.dtype)


def low_rank_template(
    template: Float[Tensor, "g m"], rank: int, n_identities: int, noise: float = 1e-3, seed: int = 0
) -> tuple[Float[Tensor, "m r"], Float[Tensor, "i r"], Float[Tensor, "g r"]]:
    """Factors whose every identity slice is the best rank-``rank`` approximation of
    ``template`` (truncated SVD, balanced between U1 and U3, U2 all ones). Components beyond
    the template's rank get small random values so they can learn what tells identities apart.
    """
    u, s, vh = torch.linalg.svd(template.double(), full_matrices=False)
    # Zero singular directions would be dead saddles (both factors 0): leave them random.
    k = min(rank, int((s > 1e-6 * s.max().clamp(min=1e-30)).sum()))
    root = s[:k].sqrt()
    g = torch.Generator().manual_seed(seed)
    u3 = noise * torch.randn(template.shape[0], rank, generator=g, dtype=torch.float64)
    u1 = noise * torch.randn(template.shape[1], rank, generator=g, dtype=torch.float64)
    u3[:, :k] = u[:, :k] * root
    u1[:, :k] = vh[:k].T * root
    u2 = torch.ones(n_identities, rank, dtype=torch.float64)
    return u1.to(template.dtype), u2.to(template.dtype), u3.to(template.dtype)
