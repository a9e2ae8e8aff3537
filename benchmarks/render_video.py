"""Video render throughput: an orbit of a trained run rendered to rgb and depth mp4s.

Run by hand:  python benchmarks/render_video.py --run outputs/lego/tensorf-vm/<stamp>
On a GPU:     python benchmarks/render_video.py --run RUN --device cuda
Without --run it first trains tensorf-vm (cpu preset) on the built-in blocks scene for --steps
steps (and says so). Each size renders --frames frames of the run's default orbit (what
``tf-render RUN`` renders) through ``render_video``: rendering, depth colouring and H.264
encoding all count. Prints one table: resolution, frames, seconds, frames/s.
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path

import torch

from tensorfields.data.camera_paths import orbit_path
from tensorfields.pipeline.host_allocator import keep_freed_memory
from tensorfields.pipeline.runs import load_run
from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.setup import default_config
from tensorfields.pipeline.trainer import Trainer
from tensorfields.pipeline.video import render_video


def train_blocks(steps: int, run_dir: Path, device: str) -> Path:
    """A tensorf-vm run on the procedural blocks scene (no download needed)."""
    config = default_config("tensorf-vm", "cpu", "blocks")
    config.trainer.max_iterations = steps
    config.trainer.eval_every = 0
    config.trainer.final_eval_every = 0
    config.trainer.device = device
    Trainer(config, run_dir, scene_data_for(config)).train()
    return run_dir


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--run", type=Path, default=None, help="trained run directory")
    parser.add_argument("--sizes", type=int, nargs="+", default=[400, 200], help="square sizes")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--steps", type=int, default=300, help="training steps without --run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/benchmarks"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.output_dir / f"render_video_{datetime.datetime.now():%Y-%m-%d_%H%M%S}"
    run = args.run
    if run is None:
        print(f"no --run given: training tensorf-vm on blocks for {args.steps} steps first")
        run = train_blocks(args.steps, root / "blocks_tensorf-vm", args.device)
    config, model, step, *_ = load_run(run, torch.device(args.device))
    train = scene_data_for(config).train.cameras
    rows = []
    for size in args.sizes:
        cameras = orbit_path(train, args.frames, width=size, height=size)
        result = render_video(
            model, cameras, root / f"orbit_{size}", fps=24.0,
            depth_range=(config.model.near, config.model.far),
        )  # fmt: skip
        rows.append((size, result))
    print()
    print(
        f"{config.method} on {config.scene} (step {step}, {run}), orbit, rgb + depth mp4, "
        f"{args.device}, {args.threads} threads on {os.cpu_count()} cores"
    )
    print("| resolution | frames | seconds | frames/s |")
    print("|---|---|---|---|")
    for size, r in rows:
        print(f"| {size}x{size} | {r.frames} | {r.seconds:.1f} | {r.frames_per_second:.2f} |")
    print(f"videos in {root}")


if __name__ == "__main__":
    main()
