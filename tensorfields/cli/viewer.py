"""``tf-viewer``: look at a finished run in the browser, from any angle, until Ctrl-C."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from tensorfields.cli.errors import run_cli
from tensorfields.data.errors import DataError, DataNotFoundError
from tensorfields.pipeline.runs import load_run
from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.trainer import resolve_device
from tensorfields.viewer import import_viser


@dataclass
class ViewerArgs:
    """Serve a trained run in the live web viewer (render modes, the model's own controls)."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory written by tf-train."""
    host: str = "127.0.0.1"
    """Address to bind; 127.0.0.1 serves this machine only (0.0.0.0: every interface)."""
    port: int = 7007
    """Port to serve on (the next free one if taken)."""
    max_resolution: int = 512
    """Longer side, in pixels, of a frame when the camera is still (smaller while it moves)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """'auto', 'cpu' or 'cuda'."""


def open_run(opts: ViewerArgs):
    """The run's trained model on its device, and the viewer showing it (not yet blocking)."""
    from tensorfields.viewer.server import Viewer

    run = load_run(opts.run_dir, resolve_device(opts.device))
    config, model = run.config, run.model
    try:
        train_split = scene_data_for(config).train
    except (DataError, DataNotFoundError, FileNotFoundError) as exc:
        print(f"viewer: no training cameras to show ({exc})")
        train_split = None
    viewer = Viewer(
        model,
        config.model.aabb,
        (config.model.near, config.model.far),
        train_split=train_split,
        host=opts.host,
        port=opts.port,
        max_resolution=opts.max_resolution,
        training=False,
    )
    viewer.show_run(run.step, run.history)
    return viewer


def main(args: list[str]) -> None:
    opts = tyro.cli(ViewerArgs, args=args, prog="tf-viewer")
    import_viser()
    viewer = open_run(opts)
    print(f"{opts.run_dir}: serving until Ctrl-C")
    try:
        viewer.serve_forever()
    except KeyboardInterrupt:
        print("viewer stopped")


def entrypoint() -> None:
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    entrypoint()
