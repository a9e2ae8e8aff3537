"""Strivec against tensorf-vm on lego 400x400 under the same CPU budget: PSNR and parameters.

Run by hand:  python benchmarks/strivec_lego.py --minutes 10
Both methods train with their cpu preset for the same training-loop time (Strivec's coarse
geometry stage and placement count as training time: they are part of its recipe), then score
the test views r_0, r_20, ..., r_180. Prints one table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
from pathlib import Path

import torch
from common import train_for_minutes

from tensorfields.pipeline.evaluator import evaluate_split


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--every", type=int, default=20, help="score every N-th test view")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/benchmarks"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.output_dir / f"strivec_lego_{datetime.datetime.now():%Y-%m-%d_%H%M%S}"
    rows = []
    for method in ("strivec", "tensorf-vm"):
        trainer, scene = train_for_minutes(
            method, args.preset, args.minutes, root / method, device=args.device
        )
        test = scene.test
        result = evaluate_split(trainer.model, test, None, list(range(0, len(test), args.every)))
        rows.append(
            {
                "method": method,
                "steps": trainer.step,
                "rays_per_s": trainer.step
                * trainer.config.trainer.batch_size
                / max(trainer.train_seconds, 1e-9),
                "psnr": result["mean"]["psnr"],
                "ssim": result["mean"]["ssim"],
                "parameters": sum(p.numel() for p in trainer.model.parameters()),
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
    print("| method | steps | rays/s | PSNR (dB) | SSIM | parameters |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['method']} | {r['steps']} | {r['rays_per_s'] / 1000:.1f}K | {r['psnr']:.2f} | "
            f"{r['ssim']:.3f} | {r['parameters'] / 1e6:.2f}M |"
        )


if __name__ == "__main__":
    main()
