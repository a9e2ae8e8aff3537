"""Component ranks (SlimmeRF's mask and slimming) on VM, CP and the TensoRF field."""

from __future__ import annotations

import pytest
import torch

from tensorfields.representations.cp import CP
from tensorfields.representations.tensorf_field import TensoRFField
from tensorfields.representations.vm import VM

RES = (9, 7, 8)


def _points(n: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, generator=torch.Generator().manual_seed(0)) * 2 - 1


def _first(decomposition, rank: int):
    """A decomposition built with only ``rank`` components: the first ones of ``decomposition``."""
    small = type(decomposition)(rank, RES)
    with torch.no_grad():
        for mine, theirs in zip(small.parameters(), decomposition.parameters(), strict=True):
            mine.copy_(theirs[:, :rank])
    return small


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("kind", [VM, CP])
def test_rank_r_equals_a_model_with_r_components(kind) -> None:
    torch.manual_seed(0)
    full = kind(5, RES)
    full.set_rank(3)
    xyz = _points()
    small = _first(full, 3)
    out = full(xyz)
    torch.testing.assert_close(out[..., :3], small(xyz), atol=1e-6, rtol=1e-5)
    assert (out[..., 3:] == 0).all()
    torch.testing.assert_close(full.summed(xyz), small.summed(xyz), atol=1e-5, rtol=1e-5)


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("kind", [VM, CP])
def test_components_above_the_rank_get_no_gradient(kind) -> None:
    torch.manual_seed(0)
    model = kind(4, RES)
    model.set_rank(2)
    model.summed(_points()).square().sum().backward()
    for p in model.parameters():
        assert (p.grad[:, 2:] == 0).all() and p.grad[:, :2].abs().sum() > 0


def test_set_rank_checks_its_range() -> None:
    vm = VM(4, RES)
    with pytest.raises(ValueError, match=r"rank must be in \[1, 4\]"):
        vm.set_rank(0)
    with pytest.raises(ValueError, match=r"rank must be in \[1, 4\]"):
        vm.set_rank(5)
    vm.set_rank(4)
    assert vm.rank == 4


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("kind", ["vm", "cp"])
def test_slim_field_renders_as_the_masked_one(kind: str) -> None:
    torch.manual_seed(0)
    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])
    field = TensoRFField(aabb, RES, kind=kind, density_components=4, appearance_components=6)
    xyz, dirs = _points(), torch.nn.functional.normalize(_points(64) + 0.1, dim=-1)
    field.set_ranks(2, 3)
    with torch.no_grad():  # a live graph would pin the parameters' old shapes
        masked = (field.density(xyz), field.color(xyz, dirs))
    size = sum(p.numel() for p in field.parameters())
    field.slim(2, 3)
    assert field.density_field.components == 2 and field.appearance_field.components == 3
    assert sum(p.numel() for p in field.parameters()) < size
    torch.testing.assert_close(field.density(xyz), masked[0], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(field.color(xyz, dirs), masked[1], atol=1e-6, rtol=1e-5)
    field.density_field.summed(xyz).sum().backward()  # still trainable after slimming
