"""Viewer frame time on this CPU: the render callback (render, colour, uint8) of a trained run.

Run by hand:  python benchmarks/viewer_cpu.py --run outputs/lego/tensorf-vm/<stamp>
Without --run it first trains tensorf-vm (cpu preset) on the built-in blocks scene for --steps
steps and says so. Frames come from --frames camera poses on an orbit around the scene box (at
the training cameras' distance and field of view), square, at each --sizes for each render mode;
the table gives the median and the slowest frame time, after one warm-up frame.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from tensorfields.data.errors import DataError, DataNotFoundError
from tensorfields.pipeline.host_allocator import keep_freed_memory
from tensorfields.pipeline.runs import load_run
from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.setup import default_config
from tensorfields.pipeline.trainer import Trainer
from tensorfields.viewer.camera import browser_camera, c2w_to_pose, look_at
from tensorfields.viewer.render import MODES, ViewerRenderer
from tensorfields.viewer.scene import initial_view


def train_blocks(steps: int, output_dir: Path) -> Path:
    """A tensorf-vm run on the blocks scene (cpu preset, ``steps`` steps); its run directory."""
    config = default_config("tensorf-vm", "cpu", "blocks")
    config.trainer.max_iterations = steps
    config.trainer.eval_every = 0
    config.trainer.final_eval_every = 0
    config.trainer.device = "cpu"
    run_dir = output_dir / f"viewer_cpu_blocks_{datetime.datetime.now():%Y-%m-%d_%H%M%S}"
    Trainer(config, run_dir, scene_data_for(config)).train()
    return run_dir


def orbit(view, centre: np.ndarray, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n`` (position, wxyz) poses around ``centre`` at the initial view's distance and
    height, looking at the centre."""
    up = view.up
    offset = view.position - centre
    height = float(offset @ up)
    flat = offset - height * up
    radius = float(np.linalg.norm(flat))
    x = flat / radius if radius > 1e-9 else np.cross(up, np.eye(3)[np.argmin(np.abs(up))])
    y = np.cross(up, x)
    poses = []
    for k in range(n):
        a = 2 * math.pi * k / n
        position = centre + height * up + radius * (math.cos(a) * x + math.sin(a) * y)
        poses.append(c2w_to_pose(look_at(position, centre, up)))
    return poses


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--run", type=Path, help="run directory (default: train on blocks)")
    parser.add_argument("--steps", type=int, default=300, help="training steps without --run")
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 400])
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/benchmarks"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run_dir = args.run
    if run_dir is None:
        print(f"No --run given: training tensorf-vm on the blocks scene for {args.steps} steps")
        run_dir = train_blocks(args.steps, args.output_dir)
    config, model, step, *_ = load_run(run_dir, args.device)
    try:
        split = scene_data_for(config).train
    except (DataError, DataNotFoundError, FileNotFoundError) as exc:  # no data: a corner view
        print(f"(no training cameras: {exc})")
        split = None
    aabb = np.asarray(config.model.aabb, dtype=np.float64)
    view = initial_view(aabb, split)
    poses = orbit(view, (aabb[:3] + aabb[3:]) / 2, args.frames + 1)
    renderer = ViewerRenderer(model, (config.model.near, config.model.far))
    rows = []
    for size in args.sizes:
        for mode in MODES:
            seconds = []
            for position, wxyz in poses:
                camera = browser_camera(position, wxyz, view.fov, 1.0, size)
                start = time.perf_counter()
                renderer.render(camera, mode)
                seconds.append(time.perf_counter() - start)
            seconds = seconds[1:]  # the first frame warms up
            rows.append((size, mode, statistics.median(seconds), max(seconds)))
            print(json.dumps({"size": size, "mode": mode, "median_s": rows[-1][2]}), flush=True)
    print()
    print(
        f"{config.method} on {config.scene}, step {step} ({run_dir}); "
        f"{args.frames} orbit frames, {args.threads} threads on {os.cpu_count()} cores, "
        f"{args.device}"
    )
    print("| frame | mode | median ms | slowest ms | frames/s |")
    print("|---|---|---|---|---|")
    for size, mode, median, slowest in rows:
        print(
            f"| {size}x{size} | {mode} | {median * 1000:.0f} | {slowest * 1000:.0f} | "
            f"{1 / median:.1f} |"
        )


if __name__ == "__main__":
    main()
