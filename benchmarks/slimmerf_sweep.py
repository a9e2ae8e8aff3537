"""SlimmeRF on lego 400x400 within a CPU budget: PSNR and size at every rank, against tensorf-vm.

Run by hand:  python benchmarks/slimmerf_sweep.py --minutes 10 --sparse-minutes 5
Three runs, each stopped after its budget of training-loop time (same preset, so the same
schedule cut at the same point):
  1. slimmerf on all 100 training views, then a rank sweep (ranks 1 .. the trained rank);
  2. tensorf-vm for the same time (the baseline full rank should stay within 0.5 dB of);
  3. slimmerf on 8 evenly spread training views (sparse), then its rank sweep: is any slimmed
     rank better than the full one?
Scores are means over the test views r_0, r_40, ..., r_160 (--every 40). Writes JSON and PSNR-vs-
size plots next to the runs; prints one table.
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
from tensorfields.pipeline.host_allocator import keep_freed_memory
from tensorfields.pipeline.rank_sweep import rank_sweep, write_rank_sweep


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="budget of runs 1 and 2")
    parser.add_argument("--sparse-minutes", type=float, default=5.0, help="budget of run 3")
    parser.add_argument("--sparse-views", type=int, default=8)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--every", type=int, default=40, help="score every N-th test view")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/benchmarks"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    root = args.output_dir / f"slimmerf_sweep_{stamp}"
    runs = {
        "full": ("slimmerf", args.minutes, None),
        "tensorf-vm": ("tensorf-vm", args.minutes, None),
        "sparse": ("slimmerf", args.sparse_minutes, args.sparse_views),
    }
    results: dict[str, dict] = {}
    for name, (method, minutes, views) in runs.items():
        trainer, scene = train_for_minutes(method, args.preset, minutes, root / name, views)
        test = scene.test
        indices = list(range(0, len(test), args.every))
        info = {"method": method, "minutes": minutes, "train_views": views, "step": trainer.step}
        if method == "slimmerf":
            rows = rank_sweep(trainer.model, test, indices)
            title = f"lego, {method}, {views or 'all'} training views, {minutes:g} min"
            write_rank_sweep(rows, root / name, title)
            info["ranks"] = rows
        else:
            info["psnr"] = evaluate_split(trainer.model, test, None, indices)["mean"]["psnr"]
        results[name] = info
        print(json.dumps({k: v for k, v in info.items() if k != "ranks"}), flush=True)
    (root / "benchmark.json").write_text(json.dumps(results, indent=2))
    print_table(results, args, len(indices))


def print_table(results: dict, args, n_views: int) -> None:
    full, sparse, base = results["full"], results["sparse"], results["tensorf-vm"]
    print()
    print(
        f"lego 400x400, --preset {args.preset}, {args.threads} threads on {os.cpu_count()} cores; "
        f"PSNR over {n_views} test views; sizes: the slimmed checkpoint (params: tensors alone)"
    )
    print(
        f"slimmerf: {full['minutes']:g} min, {full['step']} steps, all views; sparse: "
        f"{sparse['minutes']:g} min, {sparse['step']} steps, {sparse['train_views']} views"
    )
    print("| rank | file MB | params MB | PSNR (all views) | PSNR (sparse) |")
    print("|---|---|---|---|---|")
    dense = {r["rank"]: r for r in full["ranks"]}
    thin = {r["rank"]: r for r in sparse["ranks"]}
    for rank in sorted(dense | thin):
        row = dense.get(rank) or thin[rank]  # same rank, same sizes
        cells = [format(d[rank]["psnr"], ".2f") if rank in d else "-" for d in (dense, thin)]
        print(
            f"| {rank} | {row['file_mb']:.1f} | {row['params_mb']:.1f} | {cells[0]} | {cells[1]} |"
        )
    top = full["ranks"][-1]
    print(
        f"tensorf-vm, same {base['minutes']:g} min ({base['step']} steps): {base['psnr']:.2f} dB; "
        f"slimmerf at its full rank {top['rank']}: {top['psnr'] - base['psnr']:+.2f} dB"
    )
    best = max(sparse["ranks"], key=lambda r: r["psnr"])
    last = sparse["ranks"][-1]
    verdict = "yes" if best["rank"] < last["rank"] else "no"
    print(
        f"sparse ({sparse['train_views']} views): best rank {best['rank']} "
        f"{best['psnr']:.2f} dB vs full rank {last['rank']} {last['psnr']:.2f} dB; "
        f"a slimmed rank beats full rank: {verdict}"
    )


if __name__ == "__main__":
    main()
