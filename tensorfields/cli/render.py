"""``tf-render``: videos of a trained run along a camera path (a turntable by default)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import tyro

from tensorfields.cli.errors import run_cli
from tensorfields.data.camera_paths import (
    interpolate_path,
    keyframe_order,
    look_at_centre,
    orbit_path,
    resize_cameras,
    spiral_path,
)
from tensorfields.data.cameras import Cameras
from tensorfields.data.nerfstudio_camera_path import (
    read_nerfstudio_camera_path,
    write_nerfstudio_camera_path,
)
from tensorfields.models.base import Model
from tensorfields.pipeline.config import ExperimentConfig
from tensorfields.pipeline.runs import load_run
from tensorfields.pipeline.scene_data import evenly_spaced, scene_data_for
from tensorfields.pipeline.trainer import resolve_device
from tensorfields.pipeline.video import check_mp4_support, render_video

GENERATED = ("orbit", "spiral", "interpolate")


@dataclass
class RenderArgs:
    """Render a run along a camera path into rgb and depth videos (mp4) and/or PNG frames.
    With no options: a 4-second turntable around what the training cameras look at."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory written by tf-train."""
    path: str = "orbit"
    """'orbit' (a turntable at the training cameras' mean distance and elevation), 'spiral' (an
    orbit rising and sinking), 'interpolate' (a smooth path through training cameras) or a
    nerfstudio camera-path JSON file (poses in this run's world coordinates)."""
    output: Path | None = None
    """Folder to write into (default: <run_dir>/renders/<path name>)."""
    width: int | None = None
    """Frame width in pixels (default: the training images', or the path file's)."""
    height: int | None = None
    """Frame height in pixels; with only one of --width/--height the other keeps the aspect."""
    downscale: float = 1.0
    """Divide the default resolution by this (ignored with --width/--height)."""
    fps: float | None = None
    """Frames per second (default: the path file's, else 24)."""
    seconds: float = 4.0
    """Video length of a generated path (a path file has its own frames)."""
    outputs: tuple[Literal["rgb", "depth"], ...] = ("rgb", "depth")
    """What to render: rgb and/or depth (coloured near = dark to far = bright)."""
    format: Literal["mp4", "png", "both"] = "mp4"
    """mp4 videos, PNG frames (<output>/rgb/00000.png ...), or both."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """'auto', 'cpu' or 'cuda'."""
    keyframes: int = 8
    """For --path interpolate: how many training cameras the path passes through."""
    save_path: Path | None = None
    """Also save the path as nerfstudio camera-path JSON, to edit and render again."""
    control: tyro.conf.UseAppendAction[tuple[str, ...]] = ()
    """A render setting NAME=VALUE the model offers (repeatable), e.g. MIGS: --control
    identity=1 --control pose=12."""


def parse_controls(model: Model, items: tuple[str, ...]) -> dict[str, int]:
    """``NAME=VALUE`` strings checked against the model's render controls."""
    offered = {c.name: c for c in model.render_controls()}
    listing = ", ".join(f"{c.name} ({c.minimum}..{c.maximum})" for c in offered.values())
    values = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not text.strip().lstrip("-").isdigit():
            raise ValueError(f"--control {item!r}: expected NAME=INTEGER")
        if name not in offered:
            raise ValueError(
                f"--control {name!r}: this model offers "
                + (listing if offered else "no render controls")
            )
        value, control = int(text), offered[name]
        if not control.minimum <= value <= control.maximum:
            raise ValueError(
                f"--control {name}={value}: out of {control.minimum}..{control.maximum}"
            )
        values[name] = value
    return values


def frame_size(opts: RenderArgs, base: Cameras) -> tuple[int, int]:
    """--width/--height (one alone keeps the aspect), else the base size / --downscale."""
    aspect = base.width / base.height
    if opts.width is not None or opts.height is not None:
        width = opts.width or max(1, round(opts.height * aspect))
        height = opts.height or max(1, round(opts.width / aspect))
    else:
        width, height = round(base.width / opts.downscale), round(base.height / opts.downscale)
    if width < 1 or height < 1:
        raise ValueError(f"frame size {width}x{height} is empty")
    return width, height


def camera_path(opts: RenderArgs, config: ExperimentConfig) -> tuple[Cameras, float, str]:
    """The cameras to render, their frame rate and the path's name."""
    if opts.path not in GENERATED:
        file = Path(opts.path)
        if file.suffix != ".json":
            raise ValueError(
                f"--path {opts.path!r}: expected {', '.join(GENERATED)} or a camera-path .json file"
            )
        cameras, fps = read_nerfstudio_camera_path(file)
        return resize_cameras(cameras, *frame_size(opts, cameras)), opts.fps or fps, file.stem
    fps = opts.fps or 24.0
    n_frames = max(1, round(fps * opts.seconds))
    train = scene_data_for(config).train.cameras
    width, height = frame_size(opts, train)
    if opts.path in ("orbit", "spiral"):
        box = torch.tensor(config.model.aabb, dtype=torch.float32).reshape(2, 3)
        centre = look_at_centre(train, hint=box.mean(0))  # the box centre: monocular videos
        make = orbit_path if opts.path == "orbit" else spiral_path
        return make(train, n_frames, width, height, centre=centre), fps, opts.path
    order = keyframe_order(train)
    count = max(1, min(opts.keyframes, n_frames, len(order)))
    chosen = [order[i] for i in evenly_spaced(len(order), count)]
    keyframes = train[torch.tensor(chosen)]
    return interpolate_path(keyframes, n_frames, width, height), fps, opts.path


def main(args: list[str]) -> None:
    opts = tyro.cli(RenderArgs, args=args, prog="tf-render")
    formats = ("mp4", "png") if opts.format == "both" else (opts.format,)
    if "mp4" in formats:
        check_mp4_support()
    if (opts.fps is not None and opts.fps <= 0) or opts.seconds <= 0:
        raise ValueError("--fps and --seconds must be > 0")
    config, model, step, *_ = load_run(opts.run_dir, resolve_device(opts.device))
    controls = parse_controls(model, opts.control)
    cameras, fps, name = camera_path(opts, config)
    if opts.save_path is not None:
        write_nerfstudio_camera_path(opts.save_path, cameras, fps)
        print(f"camera path -> {opts.save_path}")
    out_dir = opts.output or opts.run_dir / "renders" / name
    print(
        f"Rendering {config.method} (step {step}) along {name}: {len(cameras)} frames, "
        f"{cameras.width}x{cameras.height}, {fps:g} fps"
    )
    result = render_video(
        model,
        cameras,
        out_dir,
        fps,
        outputs=list(dict.fromkeys(opts.outputs)),
        formats=formats,
        depth_range=(config.model.near, config.model.far),
        controls=controls,
    )
    print(f"{result.frames} frames in {result.seconds:.1f} s ({result.frames_per_second:.2f}/s)")
    for path in result.paths:
        print(f"wrote {path}")


def entrypoint() -> None:
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    entrypoint()
