"""Strivec: placement from points (PLY or the coarse stage), empty space, training, resume."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from tensorfields.models.strivec import StrivecModel
from tensorfields.pipeline.checkpoint import latest_checkpoint, load_checkpoint
from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.setup import default_config
from tensorfields.pipeline.trainer import Trainer
from tensorfields.representations.placement import voxel_means


def tiny_strivec(tiny_config, **model):
    """Strivec's cpu preset on blocks at 25x25, with tiny tensors and a 2-step coarse stage;
    the trainer settings of the tiny TensoRF config."""
    config = default_config("strivec", "cpu", "blocks")
    config.downscale = 4
    config.trainer = tiny_config().trainer
    options = dict(
        density_ranks=(4, 3, 2),
        appearance_ranks=(6, 6, 6),
        line_cells_init=(4, 3, 2),
        line_cells_final=(6, 5, 4),
        upsample_steps=(2,),
        alpha_mask_steps=(1, 3),
        appearance_dim=8,
        mlp_width=16,
        carve_resolution=32,
        alpha_threshold=0.0,  # the barely trained field must keep some occupied cells
        coarse_steps=2,
        coarse_voxels=16**3,
        coarse_point_resolution=12,
    )
    config.model = dataclasses.replace(config.model, **{**options, **model})
    return config


def write_ply(path: Path, points: np.ndarray, binary: bool) -> None:
    header = (
        f"ply\nformat {'binary_little_endian' if binary else 'ascii'} 1.0\n"
        f"comment test\nelement vertex {len(points)}\nproperty float x\nproperty float y\n"
        "property float z\nproperty uchar red\nend_header\n"
    )
    if binary:
        rows = np.zeros(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1")])
        rows["x"], rows["y"], rows["z"] = points.T
        path.write_bytes(header.encode() + rows.tobytes())
    else:
        body = "".join(f"{x} {y} {z} 7\n" for x, y, z in points)
        path.write_text(header + body)


@pytest.mark.parametrize("binary", [False, True])
def test_placement_from_a_ply(tmp_path: Path, binary: bool, capsys, tiny_config) -> None:
    gen = np.random.default_rng(0)
    points = gen.normal(size=(400, 3)).astype(np.float32)
    points = 0.5 * points / np.linalg.norm(points, axis=1, keepdims=True)  # a sphere
    ply = tmp_path / "points.ply"
    write_ply(ply, points, binary)
    model = StrivecModel(tiny_strivec(tiny_config, init_points=ply).model)
    assert model.fit_to_data(datamanager=None) is True
    expected = [len(voxel_means(torch.from_numpy(points), v)) for v in (0.4, 0.2, 0.1)]
    assert model.field.counts == expected
    assert model.field.density_lines[2].shape == (3, expected[2], 3, 2)  # 2 cells + 1 nodes
    assert model.point_coverage > 0.9
    line = capsys.readouterr().out
    assert f"tensors {expected[0]} at 0.4" in line and f"400 points from {ply}" in line
    assert model.fit_to_data(datamanager=None) is False  # placed once

    # Empty space: far from the sphere nothing covers a point and the density is exactly 0.
    far = torch.tensor([[0.0, 0.0, 0.0], [1.4, 1.4, 1.4]])
    assert model.field.density(far).tolist() == [0.0, 0.0]
    near = torch.from_numpy(points[:5])
    assert (model.field.density(near) > 0).all()
    assert model.occupancy.any() and not model.occupancy.all()


def test_bad_ply_is_a_clear_error(tmp_path: Path, tiny_config) -> None:
    bad = tmp_path / "bad.ply"
    bad.write_text("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\n1\n")
    model = StrivecModel(tiny_strivec(tiny_config, init_points=bad).model)
    with pytest.raises(ValueError, match=r"bad\.ply: vertices need x, y and z"):
        model.fit_to_data(datamanager=None)
    short = tmp_path / "short.ply"
    write_ply(short, np.zeros((3, 3), np.float32), binary=True)
    short.write_bytes(short.read_bytes()[:-5])
    with pytest.raises(ValueError, match=r"short\.ply: vertex data is cut short"):
        StrivecModel(tiny_strivec(tiny_config, init_points=short).model).fit_to_data(None)


def test_training_with_the_coarse_stage_and_resume(tmp_path: Path, tiny_config) -> None:
    config = tiny_strivec(tiny_config, voxel_sizes=(0.8, 0.4, 0.2), half_extents=(0.6, 0.3, 0.15))
    scene = scene_data_for(config)
    trainer = Trainer(config, tmp_path / "run", scene)
    trainer.train()
    model = trainer.model
    assert all(n > 0 for n in model.field.counts)
    assert model.field.nodes == [7, 6, 5]  # upsampled at step 2 to the final cells + 1
    state = load_checkpoint(latest_checkpoint(tmp_path / "run"))
    assert state["step"] == 4
    resumed = Trainer(config, tmp_path / "run", scene)
    resumed.resume()
    for a, b in zip(resumed.model.state_dict().values(), model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # The index is rebuilt from the loaded centres: same renders.
    origins, directions = scene.train.cameras.rays(0)
    rays = origins.reshape(-1, 3)[:64], directions.reshape(-1, 3)[:64]
    with torch.no_grad():
        a = model.render_rays(*rays, training=False).rgb
        b = resumed.model.render_rays(*rays, training=False).rgb
    torch.testing.assert_close(a, b)


def test_a_few_steps_lower_the_loss(tmp_path: Path, tiny_config) -> None:
    config = tiny_strivec(
        tiny_config,
        upsample_steps=(),
        alpha_mask_steps=(),
        voxel_sizes=(0.8, 0.4, 0.2),
        half_extents=(0.6, 0.3, 0.15),
    )
    trainer = Trainer(config, tmp_path / "run", scene_data_for(config))
    losses = [trainer.train_step()["loss"] for _ in range(12)]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
