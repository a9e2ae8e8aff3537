"""TensoRFModel: rendering rays, gradients, and the schedule hooks (upsampling, occupancy)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tensorfields.models.tensorf import TensoRFModel


@pytest.fixture
def model_config(tiny_config):
    return tiny_config().model


def _rays_at_box(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rays from a sphere of radius 4 towards points near the origin (the blocks box)."""
    gen = torch.Generator().manual_seed(seed)
    origins = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen), dim=-1) * 4.0
    targets = (torch.rand(n, 3, generator=gen) - 0.5) * 0.8
    return origins, torch.nn.functional.normalize(targets - origins, dim=-1)


@pytest.mark.parametrize("kind", ["vm", "cp"])
def test_render_rays_shapes_and_gradients(model_config, kind: str) -> None:
    torch.manual_seed(0)
    # A denser start than the official shift of -10, so samples are shaded and colour matters.
    config = dataclasses.replace(model_config, decomposition=kind, density_shift=-1.0)
    model = TensoRFModel(config)
    origins, directions = _rays_at_box(64)
    out = model.render_rays(origins, directions, training=True)
    assert out.rgb.shape == (64, 3) and out.depth.shape == (64,) and out.accumulation.shape == (64,)
    for t in (out.rgb, out.depth, out.accumulation):
        assert torch.isfinite(t).all()
    assert ((out.accumulation >= 0) & (out.accumulation <= 1 + 1e-5)).all()
    assert out.stats["samples"] > 0 and out.stats["shaded"] > 0
    near, far = config.near, config.far
    hit = out.accumulation > 1e-3
    assert hit.any()
    assert ((out.depth[hit] >= near - 1e-4) & (out.depth[hit] <= far + 1e-4)).all()

    target = torch.rand(64, 3, generator=torch.Generator().manual_seed(1))
    losses = model.loss(out, target, step=0)
    assert set(losses) >= {"loss", "mse", "l1"}
    losses["mse"].backward()  # the data term alone reaches every group of parameters
    field = model.field
    for module in (field.density_field, field.appearance_field, field.basis, field.head):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads), module
        assert sum(float(g.abs().sum()) for g in grads) > 0, module


def test_rays_missing_the_box_show_background(model_config) -> None:
    config = dataclasses.replace(model_config, background=(0.25, 0.5, 0.75))
    model = TensoRFModel(config)
    origins = torch.tensor([[0.0, 0.0, 4.0], [3.0, 3.0, 3.0]])
    directions = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # pointing away
    out = model.render_rays(origins, directions, training=False)
    torch.testing.assert_close(out.rgb, torch.tensor([[0.25, 0.5, 0.75]] * 2))
    torch.testing.assert_close(out.accumulation, torch.zeros(2))
    assert out.stats["samples"] == 0


def test_render_is_deterministic_without_training_jitter(model_config) -> None:
    model = TensoRFModel(dataclasses.replace(model_config, density_shift=-1.0))
    origins, directions = _rays_at_box(16)
    a = model.render_rays(origins, directions, training=False)
    b = model.render_rays(origins, directions, training=False)
    torch.testing.assert_close(a.rgb, b.rgb)


def test_param_groups_cover_all_parameters(model_config) -> None:
    model = TensoRFModel(model_config)
    groups = model.param_groups(lr_scale=0.5)
    assert [g["name"] for g in groups] == ["factors", "network"]
    assert groups[0]["lr"] == pytest.approx(0.5 * model_config.lr_factors)
    assert groups[1]["lr"] == pytest.approx(0.5 * model_config.lr_network)
    in_groups = {id(p) for g in groups for p in g["params"]}
    assert in_groups == {id(p) for p in model.parameters()}


def test_before_step_upsamples_at_upsample_step(model_config) -> None:
    model = TensoRFModel(model_config)
    before = model.field.resolution
    step = model_config.upsample_steps[0]
    assert step not in model_config.alpha_mask_steps
    assert model.before_step(step, None) is True
    after = model.field.resolution
    assert all(b > a for a, b in zip(before, after, strict=True))
    voxels = after[0] * after[1] * after[2]
    assert voxels == pytest.approx(model_config.voxels_final, rel=0.15)  # only one step
    assert model.before_step(step + 1000, None) is False  # no event: nothing changes
    assert model.field.resolution == after


def test_update_occupancy_produces_a_bool_grid(model_config) -> None:
    model = TensoRFModel(model_config)
    assert model.occupancy.numel() == 0  # not computed yet
    model.update_occupancy()
    assert model.occupancy.dtype == torch.bool
    assert tuple(model.occupancy.shape) == model.field.resolution
    torch.testing.assert_close(model.occupancy_aabb, model.field.aabb)
    # alpha_threshold 0 in the tiny config: every cell of the box counts as occupied.
    assert model.occupancy.all()
    strict = TensoRFModel(dataclasses.replace(model_config, alpha_threshold=0.5))
    strict.update_occupancy()
    assert strict.occupancy.dtype == torch.bool and not strict.occupancy.any()


def test_update_occupancy_caps_resolution(model_config) -> None:
    model = TensoRFModel(dataclasses.replace(model_config, max_mask_resolution=5))
    model.update_occupancy()
    assert tuple(model.occupancy.shape) == (5, 5, 5)


def test_occupancy_skips_samples_when_rendering(model_config) -> None:
    model = TensoRFModel(dataclasses.replace(model_config, density_shift=-1.0))
    origins, directions = _rays_at_box(16)
    full = model.render_rays(origins, directions, training=False)
    model.occupancy = torch.zeros(8, 8, 8, dtype=torch.bool)
    empty = model.render_rays(origins, directions, training=False)
    assert full.stats["samples"] > 0 and empty.stats["samples"] == 0
    torch.testing.assert_close(empty.rgb, model.background.expand(16, 3))


def test_occupancy_bitfield_follows_the_grid(model_config) -> None:
    """Marching reads a cached bitfield; replacing or editing the grid in place refreshes it."""
    model = TensoRFModel(model_config)
    assert model.occupancy_grid() is None  # before the first update: march everything
    model.update_occupancy()
    grid = model.occupancy_grid()
    assert torch.equal(grid.dense(), model.occupancy) and model.occupancy_grid() is grid
    model.occupancy = torch.zeros(4, 5, 6, dtype=torch.bool)
    assert model.occupancy_grid().resolution == (4, 5, 6)
    assert not model.occupancy_grid().dense().any()
    model.occupancy[1, 2, 3] = True  # in place
    assert model.occupancy_grid().dense().sum() == 1
    model.occupancy_aabb[3:] *= 2  # in place, the box
    torch.testing.assert_close(model.occupancy_grid().aabb, model.occupancy_aabb)


def test_checkpoint_state_round_trip_across_shapes(model_config) -> None:
    torch.manual_seed(0)
    trained = TensoRFModel(model_config)
    trained.before_step(model_config.upsample_steps[0], None)
    trained.update_occupancy()
    fresh = TensoRFModel(model_config)
    fresh.load_checkpoint_state(trained.state_for_checkpoint())
    assert fresh.field.resolution == trained.field.resolution
    assert torch.equal(fresh.occupancy, trained.occupancy)
    origins, directions = _rays_at_box(8)
    a = trained.render_rays(origins, directions, training=False)
    b = fresh.render_rays(origins, directions, training=False)
    torch.testing.assert_close(a.rgb, b.rgb)
    with pytest.raises(KeyError, match="missing"):
        fresh.load_checkpoint_state({})
