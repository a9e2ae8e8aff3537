"""Shared by the benchmark scripts: train methods on lego for a wall-clock budget, compare."""

from __future__ import annotations

import argparse
import datetime
import json
import os
from pathlib import Path

import torch

from tensorfields.pipeline.evaluator import evaluate_split
from tensorfields.pipeline.host_allocator import keep_freed_memory
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


def compare_methods(methods: list[str], name: str, description: str) -> None:
    """Train each method for the same ``--minutes`` with one preset, score every ``--every``-th
    test view, print one table (PSNR, SSIM, parameters, the model's own summary)."""
    keep_freed_memory()
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--every", type=int, default=20, help="score every N-th test view")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/benchmarks"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.output_dir / f"{name}_{datetime.datetime.now():%Y-%m-%d_%H%M%S}"
    rows = []
    for method in methods:
        trainer, scene = train_for_minutes(
            method, args.preset, args.minutes, root / method, device=args.device
        )
        test = scene.test
        result = evaluate_split(trainer.model, test, None, list(range(0, len(test), args.every)))
        seconds = max(trainer.train_seconds, 1e-9)
        rows.append(
            {
                "method": method,
                "steps": trainer.step,
                "rays_per_s": trainer.step * trainer.datamanager.rays_per_batch / seconds,
                "psnr": result["mean"]["psnr"],
                "ssim": result["mean"]["ssim"],
                "parameters": sum(p.numel() for p in trainer.model.parameters()),
                "state": trainer.model.progress_info(),
                "views": len(result["views"]),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    (root / "benchmark.json").write_text(json.dumps(rows, indent=2))
    print()
    print(
        f"lego 400x400, --preset {args.preset}, {args.minutes:g} min each, {args.threads} "
        f"threads on {os.cpu_count()} cores; PSNR over {rows[0]['views']} test views"
    )
    print("| method | steps | rays/s | PSNR (dB) | SSIM | parameters | final state |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['steps']} | {r['rays_per_s'] / 1000:.1f}K | {r['psnr']:.2f} | "
            f"{r['ssim']:.3f} | {r['parameters'] / 1e6:.2f}M | {r['state']} |"
        )
