"""From a command line to a ready config: method preset, scene preset, resume, user flags."""

from __future__ import annotations

import datetime
from pathlib import Path

import tyro

from tensorfields.data.scenes import load_preset
from tensorfields.pipeline.config import (
    ExperimentConfig,
    ViewerConfig,
    config_to_dict,
    experiment_from_dict,
    load_config,
)
from tensorfields.pipeline.registry import DEFAULT_METHOD, METHODS, method_config
from tensorfields.pipeline.runs import check_run_dir
from tensorfields.pipeline.scene_data import apply_scene_preset


def _flag_value(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _merge(base: dict, overrides: dict) -> dict:
    out = dict(base)
    for key, value in overrides.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def default_config(method: str, preset: str, scene: str) -> ExperimentConfig:
    """Method preset, then the scene's bounds and its per-method overrides."""
    config = method_config(method, preset)
    scene_preset = load_preset(scene)
    config = apply_scene_preset(config, scene_preset)
    config.scene = scene
    overrides = scene_preset.overrides.get(method, {})
    if overrides:
        config = experiment_from_dict(_merge(config_to_dict(config), overrides))
    return config


USAGE = (
    "tf-train [METHOD] [--scene NAME] [--preset paper|cpu] [--resume RUN_DIR] "
    "[--finetune-identity DATA --model.finetune-from RUN_DIR] [--viewer] [options]"
)


def _viewer_alias(args: list[str]) -> list[str]:
    """``--viewer``: short for ``--viewer.enabled``."""
    return ["--viewer.enabled" if arg == "--viewer" else arg for arg in args]


def _finetune_alias(args: list[str]) -> list[str]:
    """``--finetune-identity DATA`` (migs): train on DATA, a new identity's video, added to the
    run named by ``--model.finetune-from``."""
    data = _flag_value(args, "--finetune-identity")
    if data is None:
        return args
    if _flag_value(args, "--model.finetune-from") is None:
        raise ValueError(
            "--finetune-identity DATA needs --model.finetune-from RUN_DIR (the trained migs run "
            "to add the identity to)"
        )
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--finetune-identity":
            skip = True
        elif not arg.startswith("--finetune-identity="):
            out.append(arg)
    if _flag_value(args, "--scene") is None:  # the scene preset the run was trained with
        run = Path(_flag_value(args, "--model.finetune-from"))
        check_run_dir(run)
        out += ["--scene", load_config(run / "config.yaml").scene]
    return [*out, "--data", data]


def parse_train_args(args: list[str]) -> tuple[ExperimentConfig, Path]:
    """Parse ``tf-train`` arguments into a config and the run directory it writes to."""
    args = _viewer_alias(_finetune_alias(list(args)))
    resume = _flag_value(args, "--resume")
    if resume is not None:
        run_dir = Path(resume)
        config_path = run_dir / "config.yaml"
        if not config_path.is_file():
            raise FileNotFoundError(f"{run_dir}: not a run directory (no config.yaml)")
        default = load_config(config_path)
        default.viewer = ViewerConfig()  # a viewer serves one session, not every resume
        if args and args[0] in METHODS and args[0] != default.method:
            raise ValueError(f"{run_dir} was trained with {default.method}, not {args[0]}")
        rest = args[1:] if args and args[0] in METHODS else args
    else:
        if args and not args[0].startswith("-") and args[0] not in METHODS:
            raise ValueError(f"unknown method {args[0]!r}; available: {', '.join(METHODS)}")
        method = args[0] if args and args[0] in METHODS else DEFAULT_METHOD
        rest = args[1:] if args and args[0] in METHODS else args
        preset = _flag_value(rest, "--preset") or "paper"
        scene = _flag_value(rest, "--scene") or "lego"
        default = default_config(method, preset, scene)
        default.method = method
    description = (
        f"{USAGE}\n\nTrain a scene representation. METHOD (default {DEFAULT_METHOD}): "
        + ", ".join(f"{name} ({spec.description})" for name, spec in METHODS.items())
    )
    config = tyro.cli(
        ExperimentConfig, default=default, args=rest, description=description, prog="tf-train"
    )
    if resume is not None:
        config.resume = Path(resume)
        return config, Path(resume)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    return config, config.output_dir / config.scene / config.method / stamp
