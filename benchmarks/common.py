"""Shared by the benchmark scripts: train a method on lego for a wall-clock budget."""

from __future__ import annotations

from pathlib import Path

from tensorfields.pipeline.scene_data import SceneData, scene_data_for
from tensorfields.pipeline.setup import default_config
from tensorfields.pipeline.trainer import Trainer


def train_for_minutes(
    method: str,
    preset: str,
    minutes: float,
    run_dir: Path,
    train_views: int | None = None,
    device: str = "cpu",
) -> tuple[Trainer, SceneData]:
    """Train ``method`` on lego for ``minutes`` of training-loop time (no evaluation inside)."""
    config = default_config(method, preset, "lego")
    config.train_views = train_views
    config.trainer.device = device
    config.trainer.max_minutes = minutes
    config.trainer.eval_every = 0
    config.trainer.final_eval_every = 0
    scene = scene_data_for(config)
    trainer = Trainer(config, run_dir, scene)
    trainer.train()
    return trainer, scene
