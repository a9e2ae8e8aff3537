"""``tf-viewer``: look at a finished run in the browser, from any angle, until Ctrl-C."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from tensorfields.cli.errors import run_cli
from tensorfields.data.errors import DataError, DataNotFoundError
from tensorfields.pipeline.checkpoint import latest_checkpoint, load_checkpoint
from tensorfields.pipeline.config import load_config
from tensorfields.pipeline.registry import build_model
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

    config_path = opts.run_dir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{opts.run_dir}: not a run directory (no config.yaml)")
    config = load_config(config_path)
    payload = load_checkpoint(latest_checkpoint(opts.run_dir))
    model = build_model(config)
    model.load_checkpoint_state(payload["model"])
    model.to(resolve_device(opts.device))
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
    viewer.show_run(payload.get("step", 0), json.loads(payload.get("history", "[]")))
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
