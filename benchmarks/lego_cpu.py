"""Train tensorf-vm on lego 400x400 for a wall-clock budget on this CPU; score test views.

Run by hand:  python benchmarks/lego_cpu.py --marks 10 30
On a GPU:     python benchmarks/lego_cpu.py --device cuda --preset paper --marks 5 10
At each mark (minutes of training-loop time; evaluation and saving excluded) the model renders
test views r_0, r_20, ..., r_180 and the table gets a row: PSNR, SSIM, iterations, mean rays/s
since the start and model size. One run serves every mark (the schedule is the preset's, so a
10-minute mark is the state 10 minutes into the 30-minute run).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
from pathlib import Path

import torch

from tensorfields.pipeline.evaluator import evaluate_split
from tensorfields.pipeline.host_allocator import keep_freed_memory
from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.setup import default_config
from tensorfields.pipeline.trainer import Trainer


def model_megabytes(model: torch.nn.Module) -> float:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--method", default="tensorf-vm")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--marks", type=float, nargs="+", default=[10.0, 30.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/benchmarks"))
    parser.add_argument(
        "--device", default="cpu", choices=["cpu", "cuda"], help="cuda: the GPU benchmark"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = default_config(args.method, args.preset, "lego")
    config.trainer.device = args.device
    config.trainer.max_minutes = max(args.marks)
    config.trainer.eval_every = 0
    config.trainer.final_eval_every = 0
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    run_dir = args.output_dir / f"lego_cpu_{args.method}_{stamp}"
    scene = scene_data_for(config)
    trainer = Trainer(config, run_dir, scene)
    test = scene.test
    views = [
        i for i, name in enumerate(test.names) if name in {f"r_{k}" for k in range(0, 200, 20)}
    ]
    pending = sorted(args.marks)
    rows = []

    def on_step(t: Trainer) -> None:
        while pending and t.train_seconds >= pending[0] * 60:
            mark = pending.pop(0)
            result = evaluate_split(
                t.model, test, run_dir / f"eval_{mark:g}min", views, depth_range=scene.depth_range
            )
            rows.append(
                {
                    "minutes": mark,
                    "iterations": t.step,
                    "rays_per_s": t.step * config.trainer.batch_size / t.train_seconds,
                    "psnr": result["mean"]["psnr"],
                    "ssim": result["mean"]["ssim"],
                    "render_s_per_view": result["mean"]["seconds"],
                    "model_mb": model_megabytes(t.model),
                    "grid": "x".join(map(str, t.model.field.resolution)),
                }
            )
            print(json.dumps(rows[-1]), flush=True)

    trainer.train(on_step=on_step)
    if pending:  # training ended (max_iterations) before the last mark: score the end state
        t_end = trainer.train_seconds / 60
        pending[:] = [t_end]
        on_step(trainer)
    (run_dir / "benchmark.json").write_text(json.dumps(rows, indent=2))
    print()
    where = (
        torch.cuda.get_device_name()
        if args.device == "cuda"
        else f"{args.threads} threads, {os.cpu_count()} cores"
    )
    print(
        f"lego 400x400, {args.method} --preset {args.preset}, {where}; "
        f"PSNR/SSIM mean over {len(views)} test views"
    )
    print("| budget (min) | iterations | rays/s | PSNR (dB) | SSIM | grid | MB | render s/view |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['minutes']:.0f} | {r['iterations']} | {r['rays_per_s'] / 1000:.1f}K | "
            f"{r['psnr']:.2f} | {r['ssim']:.3f} | {r['grid']} | {r['model_mb']:.1f} | "
            f"{r['render_s_per_view']:.1f} |"
        )


if __name__ == "__main__":
    main()
