"""The splat method: training lowers the loss, densification follows its settings, checkpoints
resume with changed counts, Gaussian PLYs round-trip, point clouds load, and the D-SSIM loss."""

from __future__ import annotations

import dataclasses
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from tensorfields.data.cameras import Cameras
from tensorfields.data.errors import DataError
from tensorfields.data.gaussian_ply import read_gaussian_ply, write_gaussian_ply
from tensorfields.data.ply import write_ply_vertices
from tensorfields.data.point_clouds import read_points
from tensorfields.models.losses import ssim_loss
from tensorfields.models.splat import SplatModel, scene_scale
from tensorfields.pipeline.checkpoint import load_checkpoint
from tensorfields.pipeline.setup import default_config
from tensorfields.pipeline.trainer import Trainer
from tensorfields.representations.gaussians import GaussianSet


def tiny_splat(**densify):
    """The cpu preset on blocks at 25x25 with 300 Gaussians; ``densify`` overrides."""
    config = default_config("splat", "cpu", "blocks")
    config.downscale = 4
    model = dataclasses.replace(config.model, init_count=300, sh_degree_interval=2)
    config.model = dataclasses.replace(model, densify=dataclasses.replace(model.densify, **densify))
    config.trainer = dataclasses.replace(
        config.trainer,
        max_iterations=30,
        eval_every=0,
        checkpoint_every=10,
        final_eval_every=0,
        device="cpu",
    )
    return config


def test_training_lowers_the_loss(blocks_scene, tmp_path: Path, backend) -> None:
    config = tiny_splat(enabled=False)
    trainer = Trainer(config, tmp_path / "run", blocks_scene)
    losses = [trainer.train_step()["loss"] for _ in range(30)]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert int(trainer.model.active_sh_degree) == 3  # raised every 2 steps
    # The means' learning rate is scaled by the scene scale and decays; the others do not.
    rates = {g["name"]: g["lr"] for g in trainer.optimizer.param_groups}
    scale = float(trainer.model.scene_scale)
    assert scale == pytest.approx(scene_scale(blocks_scene.train.cameras))
    assert rates["means"] < config.model.lr_means * scale
    assert rates["opacities"] == pytest.approx(config.model.lr_opacities)


def test_cpu_preset_starts_inside_the_visual_hull(blocks_scene, tmp_path: Path) -> None:
    # The blocks span [-0.8, 0.8] x [-0.8, 0.72] x [-0.6, 0.45] inside a box of
    # [-1, 1] x [-1, 1] x [-0.8, 0.7]; the hull of 25x25 masks is looser than the blocks.
    low, high = torch.tensor([-0.9, -0.9, -0.7]), torch.tensor([0.9, 0.82, 0.55])
    shares = {}
    for region in ("hull", "box"):
        config = tiny_splat(enabled=False)
        config.model = dataclasses.replace(config.model, init_region=region)
        trainer = Trainer(config, tmp_path / region, blocks_scene)
        trainer.train_step()
        means = trainer.model.splats.params["means"].detach()
        assert len(means) == 300
        shares[region] = ((means > low) & (means < high)).all(dim=1).float().mean().item()
    assert shares["hull"] > 0.8 and shares["box"] < 0.72


def _fake_densify_step(model: SplatModel, optimizer, step: int, grad: float) -> None:
    """One densification step where every Gaussian was drawn with screen gradient ``grad``."""
    n = len(model.splats)
    means2d = torch.zeros(1, n, 2, requires_grad=True)
    means2d.grad = torch.full((1, n, 2), grad)
    info = {
        "means2d": means2d,
        "radii": torch.ones(1, n, 2, dtype=torch.int32),
        "width": 2,
        "height": 2,
        "n_cameras": 1,
        "gaussian_ids": None,
    }
    model._info = info
    model.after_optimizer_step(step, optimizer)


def test_densification_follows_its_settings() -> None:
    pytest.importorskip("gsplat")
    config = tiny_splat(refine_start_iter=0, refine_every=5, reset_every=10).model
    model = SplatModel(config)
    model.scene_scale.fill_(4.0)
    optimizer = model.make_optimizer()
    n = len(model.splats)
    _fake_densify_step(model, optimizer, 3, grad=1.0)  # not a refine step: counts only
    assert len(model.splats) == n
    _fake_densify_step(model, optimizer, 5, grad=1.0)  # high gradient: all clone or split
    grown = len(model.splats)
    assert grown == 2 * n
    means_optimizer = optimizer.optimizers["means"]
    assert means_optimizer.param_groups[0]["params"][0] is model.splats.params["means"]
    # Low-opacity Gaussians are pruned; at reset_every, opacities drop to 2 x prune_opa.
    with torch.no_grad():
        model.splats.params["opacities"][:10] = -10.0
    _fake_densify_step(model, optimizer, 10, grad=0.0)
    assert len(model.splats) == grown - 10
    opacity = torch.sigmoid(model.splats.params["opacities"])
    assert opacity.max() <= 2 * config.densify.prune_opa + 1e-6

    capped = SplatModel(
        dataclasses.replace(config, densify=dataclasses.replace(config.densify, max_gaussians=n))
    )
    capped.scene_scale.fill_(4.0)
    _fake_densify_step(capped, capped.make_optimizer(), 5, grad=1.0)
    assert len(capped.splats) == n  # at the cap: no growth


def test_resume_after_densification(blocks_scene, tmp_path: Path) -> None:
    pytest.importorskip("gsplat")
    config = tiny_splat(refine_start_iter=0, refine_every=5, grow_grad2d=0.0)
    config.trainer = dataclasses.replace(config.trainer, max_iterations=10)
    first = Trainer(config, tmp_path / "run", blocks_scene)
    first.train()
    count = len(first.model.splats)
    assert count > 300  # every drawn Gaussian grew at steps 5 (and pruning is rare this early)
    payload = load_checkpoint(first.checkpoint_path)
    assert payload["model"]["splats.params.means"].shape == (count, 3)

    config.trainer = dataclasses.replace(config.trainer, max_iterations=12)
    second = Trainer(config, tmp_path / "run", blocks_scene)
    second.resume()
    assert len(second.model.splats) == count and second.step == 10
    assert torch.equal(second.model.strategy_state["count"], first.model.strategy_state["count"])
    second.train()
    assert second.step == 12


def test_gaussian_ply_round_trip_renders_the_same(tmp_path: Path) -> None:
    model = SplatModel(tiny_splat().model)
    with torch.no_grad():
        for p in model.splats.params.values():
            p.add_(torch.randn_like(p) * 0.01)
    assert model.export_splats()["shN"].shape[1] == 0  # degree 0 in use: no f_rest written
    model.active_sh_degree.fill_(3)  # as after 3 x sh_degree_interval steps
    path = tmp_path / "splats.ply"
    write_gaussian_ply(path, model.export_splats())
    header = path.read_bytes()[:2000].decode("ascii", errors="ignore")
    for name in (
        "property float f_dc_0",
        "property float f_rest_44",
        "property float rot_3",
        "property float opacity",
        "property float nx",
    ):
        assert name in header
    raw = read_gaussian_ply(path)
    for name, tensor in model.export_splats().items():
        assert torch.equal(raw[name], tensor), name

    config = dataclasses.replace(tiny_splat().model, init_splats=path)
    loaded = SplatModel(config)
    cameras = _camera()
    a, b = model.render_camera(cameras, 0), loaded.render_camera(cameras, 0)
    assert torch.equal(a.rgb, b.rgb)


def _camera() -> Cameras:
    c2w = torch.eye(4)
    c2w[:3, 3] = torch.tensor([0.0, 0.0, -4.0])
    f = torch.tensor([30.0])
    return Cameras(c2w[None], f, f, torch.tensor([16.0]), torch.tensor([12.0]), 32, 24)


def test_foreign_degree0_ply_loads_and_bad_ply_is_named(tmp_path: Path) -> None:
    columns = {
        name: np.zeros(4, np.float32)
        for name in (
            "x",
            "y",
            "z",
            "f_dc_0",
            "f_dc_1",
            "f_dc_2",
            "opacity",
            "scale_0",
            "scale_1",
            "scale_2",
            "rot_0",
            "rot_1",
            "rot_2",
            "rot_3",
        )
    }
    write_ply_vertices(tmp_path / "deg0.ply", columns)
    raw = read_gaussian_ply(tmp_path / "deg0.ply")
    assert raw["shN"].shape == (4, 0, 3)
    gaussians = GaussianSet(raw, sh_degree=3)  # missing bands start at zero
    assert gaussians.params["shN"].shape == (4, 15, 3)
    del columns["rot_3"]
    write_ply_vertices(tmp_path / "bad.ply", columns)
    with pytest.raises(DataError, match=r"bad\.ply: not a 3DGS Gaussian PLY.*rot_3"):
        read_gaussian_ply(tmp_path / "bad.ply")


def test_point_clouds_from_ply_and_colmap(tmp_path: Path) -> None:
    xyz = np.array([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], np.float32)
    write_ply_vertices(
        tmp_path / "p.ply",
        {
            "x": xyz[:, 0],
            "y": xyz[:, 1],
            "z": xyz[:, 2],
            "red": np.array([255.0, 0.0], np.float32),
            "green": np.array([0.0, 51.0], np.float32),
            "blue": np.array([0.0, 0.0], np.float32),
        },
    )
    points, colors = read_points(tmp_path / "p.ply")
    assert torch.equal(points, torch.from_numpy(xyz))
    torch.testing.assert_close(colors, torch.tensor([[1.0, 0, 0], [0, 0.2, 0]]))

    text = "# comment\n1 0 1 2 255 0 0 0.5 1 2\n2 3 4 5 0 51 0 0.1\n"
    (tmp_path / "points3D.txt").write_text(text)
    points, colors = read_points(tmp_path / "points3D.txt")
    assert torch.equal(points, torch.from_numpy(xyz))
    torch.testing.assert_close(colors, torch.tensor([[1.0, 0, 0], [0, 0.2, 0]]))

    blob = struct.pack("<Q", 2)
    blob += struct.pack("<QdddBBBdQ", 1, 0, 1, 2, 255, 0, 0, 0.5, 1) + struct.pack("<ii", 1, 2)
    blob += struct.pack("<QdddBBBdQ", 2, 3, 4, 5, 0, 51, 0, 0.1, 0)
    (tmp_path / "points3D.bin").write_bytes(blob)
    points, colors = read_points(tmp_path / "points3D.bin")
    assert torch.equal(points, torch.from_numpy(xyz))
    (tmp_path / "cut.bin").write_bytes(blob[:-10])
    with pytest.raises(DataError, match=r"cut\.bin: not a COLMAP points3D\.bin"):
        read_points(tmp_path / "cut.bin")
    (tmp_path / "bad.txt").write_text("1 0 x 2 255 0 0 0.5\n")
    with pytest.raises(DataError, match=r"bad\.txt: line 1 is not a COLMAP point"):
        read_points(tmp_path / "bad.txt")

    gaussians = GaussianSet.from_points(points, colors, sh_degree=1)
    scales = gaussians.params["scales"].exp()
    distance = math.dist(xyz[0], xyz[1])
    torch.testing.assert_close(scales, torch.full((2, 3), distance))


def test_ssim_loss() -> None:
    g = torch.Generator().manual_seed(0)
    image = torch.rand(1, 20, 24, 3, generator=g)
    assert ssim_loss(image, image).item() == pytest.approx(0.0, abs=1e-6)
    noisy = (image + 0.2 * torch.randn(image.shape, generator=g)).requires_grad_()
    loss = ssim_loss(noisy, image)
    loss.backward()
    assert 0.1 < loss.item() < 1.0 and noisy.grad.abs().sum() > 0
