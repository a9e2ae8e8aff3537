"""Render a camera path into videos (mp4 through imageio's ffmpeg plugin) and PNG frames."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import imageio.v3 as iio
import numpy as np
import torch
from jaxtyping import UInt8
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tensorfields.data.cameras import Cameras
from tensorfields.models.base import Model
from tensorfields.pipeline.images import colorize_depth, to_uint8

OUTPUTS = ("rgb", "depth")
FORMATS = ("mp4", "png")


class VideoDependencyError(ValueError):
    """imageio-ffmpeg is not installed (a ValueError, so the CLIs report it in one line)."""


def check_mp4_support() -> None:
    """Fail before rendering anything if mp4 cannot be written."""
    if importlib.util.find_spec("imageio_ffmpeg") is None:
        raise VideoDependencyError(
            "writing mp4 needs the imageio-ffmpeg package: pip install imageio-ffmpeg "
            "(or write PNG frames with --format png)"
        )


def even_size(frame: UInt8[np.ndarray, "h w 3"]) -> UInt8[np.ndarray, "h2 w2 3"]:
    """Pad odd heights and widths by repeating the last row or column: H.264 in yuv420p (what
    players accept) needs even sizes, and padding keeps the pixels unscaled."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class FrameWriter:
    """Streams frames of one kind (e.g. rgb) to ``<name>.mp4`` and/or ``<name>/00000.png``..."""

    def __init__(self, out_dir: Path, name: str, fps: float, formats: Sequence[str]) -> None:
        self.paths: list[Path] = []
        self.png_dir = out_dir / name if "png" in formats else None
        self.video = None
        if self.png_dir is not None:
            self.png_dir.mkdir(parents=True, exist_ok=True)
            self.paths.append(self.png_dir)
        if "mp4" in formats:
            check_mp4_support()
            path = out_dir / f"{name}.mp4"
            self.video = imageio.get_writer(
                path, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=8,
                pixelformat="yuv420p", macro_block_size=1, ffmpeg_log_level="error",
            )  # fmt: skip
            self.paths.append(path)
        self.count = 0

    def append(self, frame: UInt8[np.ndarray, "h w 3"]) -> None:
        if self.png_dir is not None:
            iio.imwrite(self.png_dir / f"{self.count:05d}.png", frame)
        if self.video is not None:
            self.video.append_data(even_size(frame))
        self.count += 1

    def close(self) -> None:
        if self.video is not None:
            self.video.close()


@dataclass
class VideoResult:
    """What a render wrote, and how fast (rendering and encoding together)."""

    paths: list[Path]
    frames: int
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


@torch.no_grad()
def render_video(
    model: Model,
    cameras: Cameras,
    out_dir: Path,
    fps: float,
    outputs: Sequence[str] = OUTPUTS,
    formats: Sequence[str] = ("mp4",),
    depth_range: tuple[float, float] = (2.0, 6.0),
    controls: dict[str, int] | None = None,
    show_progress: bool = True,
) -> VideoResult:
    """Render every camera of the path (inside ``model.render_with(controls)``, for models whose
    renders depend on settings such as a pose) and write each output as mp4 and/or PNG frames:
    ``rgb``, and ``depth`` coloured from near (dark) to far (bright) over ``depth_range``."""
    unknown = (set(outputs) - set(OUTPUTS)) | (set(formats) - set(FORMATS))
    if unknown or not outputs or not formats:
        raise ValueError(f"outputs must be among {OUTPUTS} and formats among {FORMATS}")
    if "mp4" in formats:
        check_mp4_support()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = next(model.parameters()).device
    cameras = cameras.to(device)
    was_training = model.training
    model.eval()
    writers = {name: FrameWriter(out_dir, name, fps, formats) for name in outputs}
    columns = (
        TextColumn("render"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:.2f} frames/s"), TimeElapsedColumn(), TimeRemainingColumn(),
    )  # fmt: skip
    start = time.perf_counter()
    try:
        with (
            model.render_with(controls or {}),
            Progress(*columns, disable=not show_progress, transient=True) as progress,
        ):
            task = progress.add_task("render", total=len(cameras), rate=0.0)
            for i in range(len(cameras)):
                out = model.render_camera(cameras, i)
                if "rgb" in writers:
                    writers["rgb"].append(to_uint8(out.rgb))
                if "depth" in writers:
                    depth = colorize_depth(out.depth, out.accumulation, *depth_range)
                    writers["depth"].append(to_uint8(depth))
                rate = (i + 1) / (time.perf_counter() - start)
                progress.update(task, advance=1, rate=rate)
    finally:
        for writer in writers.values():
            writer.close()
        model.train(was_training)
    seconds = time.perf_counter() - start
    paths = [path for writer in writers.values() for path in writer.paths]
    return VideoResult(paths, len(cameras), seconds)
