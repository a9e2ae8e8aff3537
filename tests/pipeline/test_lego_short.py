"""A short run on real data (lego, 8 views at 50x50): the training loss goes down."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import imageio.v3 as iio
import pytest

from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.setup import default_config
from tensorfields.pipeline.trainer import Trainer

STEPS = 60


@pytest.mark.lego
def test_short_lego_run_lowers_the_loss(lego_root: Path, tmp_path: Path) -> None:
    config = default_config("tensorf-vm", "cpu", "lego")
    config.data = lego_root
    config.downscale = 8  # the 400x400 copy of lego -> 50x50 (800x800 originals -> 100x100)
    config.train_views = 8
    config.model = dataclasses.replace(
        config.model,
        voxels_init=32**3,
        upsample_steps=(),  # no upsampling within the run
        carve_resolution=64,
        density_components=8,
        appearance_components=16,
    )
    config.trainer = dataclasses.replace(
        config.trainer,
        batch_size=1024,
        max_iterations=STEPS,
        eval_every=0,
        checkpoint_every=0,
        final_eval_every=0,
        device="cpu",
    )
    assert all(step > STEPS for step in config.model.alpha_mask_steps)
    scene = scene_data_for(config)
    assert scene.root == lego_root
    full = iio.imread(lego_root / "train" / "r_0.png").shape[0]
    assert tuple(scene.train.images.shape) == (8, full // 8, full // 8, 3)
    trainer = Trainer(config, tmp_path / "run", scene)
    logs = [trainer.train_step() for _ in range(STEPS)]
    losses = [log["loss"] for log in logs]
    assert all(math.isfinite(x) for x in losses)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.75 * first, (first, last)
    assert sum(log["psnr"] for log in logs[-5:]) > sum(log["psnr"] for log in logs[:5])
    assert trainer.model.field.resolution == (32, 32, 32)
