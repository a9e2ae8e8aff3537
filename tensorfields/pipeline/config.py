"""Experiment configuration: dataclasses whose field docstrings become ``--help``."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import tyro
import yaml

from tensorfields.models.base import ModelConfig
from tensorfields.models.tensorf import TensoRFModelConfig


@dataclass
class TrainerConfig:
    """Optimisation loop, logging and checkpoint settings."""

    max_iterations: int = 30000
    """Training iterations (one batch of rays each)."""
    batch_size: int = 4096
    """Rays per iteration (ray-marched methods; splat methods train on one image a step)."""
    max_minutes: float | None = None
    """Stop after this much training-loop wall-clock time (evaluation and saving excluded)."""
    lr_decay_target: float = 0.1
    """Learning rates decay exponentially to this fraction over max_iterations."""
    lr_reset_on_rebuild: bool = True
    """Reset learning rates to their initial values when the grid is resized (official)."""
    eval_every: int = 2000
    """Render one validation view every N iterations (0: never)."""
    checkpoint_every: int = 1000
    """Write the checkpoint every N iterations (and always at the end)."""
    final_eval_every: int = 8
    """After training, evaluate every N-th test view (0: skip the final evaluation)."""
    seed: int = 0
    """Seed for initialisation and ray sampling."""
    threads: int | None = None
    """CPU threads for torch (default: all cores)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """'auto' (CUDA when available), 'cpu' or 'cuda'."""


@dataclass
class ViewerConfig:
    """The live web viewer (needs viser): watch the model from any angle while it trains."""

    enabled: bool = False
    """Serve the viewer while training (also spelled --viewer)."""
    host: str = "127.0.0.1"
    """Address to bind; 127.0.0.1 serves this machine only (0.0.0.0: every interface)."""
    port: int = 7007
    """Port to serve on (the next free one if taken)."""
    max_resolution: int = 512
    """Longer side, in pixels, of a frame when the camera is still (smaller while it moves)."""
    keep_alive: bool = False
    """Keep serving the trained model after training ends, until Ctrl-C."""


@dataclass
class ExperimentConfig:
    """A training run: which method, which scene, and how to train it."""

    method: tyro.conf.Suppress[str] = "tensorf-vm"
    """Registered method name (the first argument of tf-train)."""
    scene: str = "lego"
    """Scene preset in scenes/ (bounds, background, where its data lives)."""
    data: Path | None = None
    """Dataset folder; default: $TF_DATA_DIR/<dataset>/<scene>, then ./data/<dataset>/<scene>."""
    downscale: float = 1.0
    """Load images downscaled by this factor (2 = half width and height)."""
    train_views: int | None = None
    """Use only N training views, evenly spread (default: all)."""
    identity: int | None = None
    """Multi-identity datasets: train and evaluate on this identity alone (default: all)."""
    preset: Literal["paper", "cpu"] = "paper"
    """Recipe preset: 'paper' (the official recipe) or 'cpu' (sized for a 2-core CPU)."""
    output_dir: Path = Path("outputs")
    """Runs go to <output_dir>/<scene>/<method>/<timestamp>/."""
    resume: Path | None = None
    """Run directory to resume from (its config and last checkpoint)."""
    model: ModelConfig = field(default_factory=TensoRFModelConfig)
    """The method's model settings (its config class: see the method registry)."""
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    viewer: ViewerConfig = field(default_factory=ViewerConfig)
    """Live web viewer settings (--viewer turns it on)."""


def config_to_dict(config) -> dict:
    """Plain, YAML/JSON-safe dict (paths as strings, tuples as lists)."""

    def convert(value):
        if dataclasses.is_dataclass(value):
            return {f.name: convert(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [convert(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        return value

    return convert(config)


def config_from_dict(cls, data: dict, model_class: type | None = None):
    """Inverse of :func:`config_to_dict` for our dataclasses; unknown keys are an error.
    ``model_class``: the dataclass of the ``model`` field (it differs per method)."""
    hints = typing.get_type_hints(cls)
    if model_class is not None:
        hints["model"] = model_class
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value)
    return cls(**kwargs)


def _coerce(hint, value):
    if value is None:
        return None
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return config_from_dict(hint, value)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(options[0], value)
    if origin is tuple:
        return tuple(value)
    if hint is Path:
        return Path(value)
    return value


def experiment_from_dict(data: dict) -> ExperimentConfig:
    """An :class:`ExperimentConfig` from its dict, the model part read as its method's class."""
    from tensorfields.pipeline.registry import model_config_class  # the registry imports us

    model_class = model_config_class(data.get("method", "tensorf-vm"))
    return config_from_dict(ExperimentConfig, data, model_class)


def save_config(config: ExperimentConfig, path: Path) -> None:
    path.write_text(yaml.safe_dump(config_to_dict(config), sort_keys=False))


def load_config(path: Path) -> ExperimentConfig:
    try:
        return experiment_from_dict(yaml.safe_load(Path(path).read_text()))
    except (OSError, yaml.YAMLError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid tensorfields config: {exc}") from exc
