"""``tf-eval``: render a trained run's test views and score them."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from tensorfields.cli.errors import run_cli
from tensorfields.pipeline.evaluator import evaluate_split
from tensorfields.pipeline.lpips import load_lpips
from tensorfields.pipeline.rank_sweep import print_rank_sweep, rank_sweep, write_rank_sweep
from tensorfields.pipeline.runs import load_run
from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.trainer import resolve_device


@dataclass
class EvalArgs:
    """Evaluate a run: PSNR, SSIM and LPIPS per view, and ground truth | render | depth PNGs."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory written by tf-train."""
    split: str = "test"
    """Split to evaluate: test, val or train (the humans dataset also has test_ood: poses
    outside the training motion)."""
    every: int = 1
    """Evaluate every N-th view."""
    lpips: bool = True
    """Compute LPIPS (skipped with a notice when its weights cannot be had)."""
    output: Path | None = None
    """Where to write images and metrics.json (default: <run_dir>/eval/<split>)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """'auto', 'cpu' or 'cuda'."""
    rank: int | None = None
    """Evaluate with the first RANK density components (appearance in proportion: 3x for
    SlimmeRF) and the rest dropped: test-time slimming. Default: the trained ranks."""
    rank_sweep: bool = False
    """Evaluate at every rank from 1 to the trained one: PSNR / SSIM / size per rank into
    rank_sweep.json and a PSNR-vs-size plot rank_sweep.png (default: <run_dir>/eval/
    <split>_rank_sweep). No per-view images; use --every to evaluate fewer views."""


def main(args: list[str]) -> None:
    opts = tyro.cli(EvalArgs, args=args, prog="tf-eval")
    if opts.rank is not None and opts.rank_sweep:
        raise ValueError("--rank and --rank-sweep exclude each other: the sweep visits every rank")
    device = resolve_device(opts.device)
    config, model, step, *_ = load_run(opts.run_dir)
    if opts.rank is not None:
        model.set_rank(opts.rank)
    model.to(device)
    scene = scene_data_for(config)
    split = scene.split(opts.split)
    default_out = opts.run_dir / "eval" / opts.split
    if opts.rank is not None:
        default_out = default_out.with_name(f"{opts.split}_rank{opts.rank}")
    if opts.rank_sweep:
        default_out = default_out.with_name(f"{opts.split}_rank_sweep")
    out_dir = opts.output or default_out
    lpips = load_lpips(device) if opts.lpips else None
    indices = list(range(0, len(split), opts.every))
    if opts.rank_sweep:
        rows = rank_sweep(model, split, indices, lpips)
        title = f"{config.method} on {config.scene}, step {step}, {len(indices)} views"
        print_rank_sweep(rows, title)
        paths = write_rank_sweep(rows, out_dir, title)
        print("wrote " + ", ".join(map(str, paths)))
        return
    result = evaluate_split(
        model, split, out_dir, indices=indices, lpips=lpips, depth_range=scene.depth_range
    )
    at_rank = "" if opts.rank is None else f", rank {opts.rank}"
    print(
        f"{config.method} on {config.scene}, step {step}{at_rank}, "
        f"{len(result['views'])} {opts.split} views"
    )
    for key, value in result["mean"].items():
        print(f"  {key:8s} {value:.4f}")
    print(f"wrote {out_dir}")


def entrypoint() -> None:
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    entrypoint()
