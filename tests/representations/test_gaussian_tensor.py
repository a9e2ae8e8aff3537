import torch

from tensorfields.core.cp_decomposition import (
    cp_als,
    cp_full,
    cp_slice,
    fit_identity_row,
    khatri_rao,
    low_rank_template,
)
from tensorfields.representations.gaussian_tensor import (
    CPGaussianTensor,
    DenseGaussianTensor,
    join_attributes,
    split_attributes,
)


def random_factors(ids=4, items=30, attributes=12, rank=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    u1 = torch.randn(attributes, rank, generator=g, dtype=torch.float64)
    u2 = torch.randn(ids, rank, generator=g, dtype=torch.float64)
    u3 = torch.randn(items, rank, generator=g, dtype=torch.float64)
    return u1, u2, u3


def test_rebuild_follows_the_identity_gaussian_attribute_layout():
    u1, u2, u3 = random_factors()
    full = cp_full(u1, u2, u3)
    i, g, m = 2, 7, 5
    assert torch.isclose(full[i, g, m], sum(u2[i, r] * u3[g, r] * u1[m, r] for r in range(3)))
    assert torch.allclose(cp_slice(u1, u2[i], u3), full[i])
    assert torch.allclose(khatri_rao(u2, u1)[i * 12 + m], u2[i] * u1[m])
    tensor = CPGaussianTensor(torch.zeros(30, 12), 4, 3)
    with torch.no_grad():
        tensor.u1.copy_(u1), tensor.u2.copy_(u2), tensor.u3.copy_(u3)
    assert torch.allclose(tensor.identity(i).double(), full[i].float().double(), atol=1e-5)
    rows = tensor.identity(i)
    parts = split_attributes(rows)
    assert parts.means.shape == (30, 3) and parts.quats.shape == (30, 4)
    assert parts.features.shape == (30, 1) and torch.equal(parts.opacity_logits, rows[:, -1])
    assert torch.equal(join_attributes(parts), rows)


def test_als_fits_a_low_rank_tensor_exactly_at_its_rank():
    target = cp_full(*random_factors(rank=3))
    u1, u2, u3 = cp_als(target, rank=3, iterations=300)
    error = (cp_full(u1, u2, u3) - target).norm() / target.norm()
    assert error < 1e-6
    u1, u2, u3 = cp_als(target, rank=1, iterations=50)
    assert (cp_full(u1, u2, u3) - target).norm() / target.norm() > 0.1  # rank 1 cannot


def test_new_identity_recovers_held_out_coefficients():
    u1, u2, u3 = random_factors(rank=5)
    held_out = torch.randn(5, dtype=torch.float64)
    target = cp_slice(u1, held_out, u3)
    assert torch.allclose(fit_identity_row(u1, u3, target), held_out, atol=1e-8)
    # The way training adds one: a new U2 row, fitted by Adam with the shared factors frozen.
    tensor = CPGaussianTensor(torch.zeros(30, 12), 4, 5)
    with torch.no_grad():
        tensor.u1.copy_(u1), tensor.u2.copy_(u2), tensor.u3.copy_(u3)
    tensor.add_identities(1)
    optimizer = torch.optim.Adam(tensor.identity_parameters(), lr=0.05)
    for _ in range(600):
        loss = (tensor.identity(4) - target.float()).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert torch.allclose(tensor.u2[4].double(), held_out, atol=1e-2)
    assert torch.allclose(tensor.u2[:4].double(), u2.float().double())  # others untouched


def test_every_identity_starts_from_the_template():
    g = torch.Generator().manual_seed(1)
    template = torch.randn(40, 12, generator=g)
    template[:, 5] = 0.0  # a zero column must not leave dead components
    u1, u2, u3 = low_rank_template(template, rank=16, n_identities=3)
    assert torch.allclose(cp_full(u1, u2, u3), template.expand(3, -1, -1), atol=1e-4)
    assert (u1.abs().sum(0) > 0).all() and (u3.abs().sum(0) > 0).all()
    dense = DenseGaussianTensor(template, 3)
    assert torch.equal(dense.full()[2], template)
    cp = CPGaussianTensor(template, 3, 16)
    params_cp = sum(p.numel() for p in cp.parameters())
    assert params_cp == (12 + 3 + 40) * 16
    assert sum(p.numel() for p in dense.parameters()) == 3 * 40 * 12
