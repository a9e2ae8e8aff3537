"""Open a run directory written by tf-train: its config and its trained model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import torch

from tensorfields.models.base import Model
from tensorfields.pipeline.checkpoint import latest_checkpoint, load_checkpoint
from tensorfields.pipeline.config import ExperimentConfig, load_config
from tensorfields.pipeline.registry import build_model

RUN_FILES = ("config.yaml", "checkpoints/last.pt")


class Run(NamedTuple):
    config: ExperimentConfig
    model: Model
    step: int
    checkpoint: Path
    history: list[dict]
    """The run's logged loss / PSNR history (metrics every 100 steps)."""


def check_run_dir(run_dir: Path) -> None:
    """FileNotFoundError saying what is missing unless ``run_dir`` holds a tf-train run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"{run_dir}: no such run directory (a folder written by tf-train, holding "
            f"{' and '.join(RUN_FILES)})"
        )
    missing = [name for name in RUN_FILES if not (run_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{run_dir} is not a tf-train run directory: missing {' and '.join(missing)} "
            f"(no {run_dir / missing[0]})"
        )


def load_run(run_dir: Path, device: torch.device | str = "cpu") -> Run:
    """The run's config and its trained model (on ``device``, in eval mode)."""
    check_run_dir(run_dir)
    config = load_config(Path(run_dir) / "config.yaml")
    checkpoint = latest_checkpoint(Path(run_dir))
    payload = load_checkpoint(checkpoint)
    model = build_model(config)
    model.load_checkpoint_state(payload["model"])
    history = json.loads(payload.get("history", "[]"))
    return Run(config, model.to(device).eval(), int(payload["step"]), checkpoint, history)
