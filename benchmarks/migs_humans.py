"""MIGS vs per-identity Gaussian avatars on the procedural humans (issue 7). Run by hand:

    python benchmarks/migs_humans.py [--identities 6] [--steps-per-identity 1000]

Same compute for both: MIGS trains one model on every identity for N x S steps (one frame of
one identity a step); the baseline trains N separate dense models (``--model.factorization
dense --identity k``, each its own networks) for S steps each. Both are scored on every
in-distribution (held-out frames of the training motion) and out-of-distribution (poses outside
it) test frame. Then a new identity (another seed) joins the trained MIGS tensor with k of its
frames (``--finetune-identity``) and is compared with a dense model trained from scratch on the
same frames for the same steps. Prints one table; the parameter rows count what each approach
stores for n identities at this run's sizes.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import time
from pathlib import Path

import torch

from tensorfields.data.humans.generate import ensure_humans_dataset
from tensorfields.data.humans.layout import load_humans_split
from tensorfields.pipeline.evaluator import evaluate_split
from tensorfields.pipeline.host_allocator import keep_freed_memory
from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.setup import default_config
from tensorfields.pipeline.trainer import Trainer


def train(run_dir: Path, data: Path, steps: int, threads: int, **options) -> Trainer:
    """Train migs (cpu preset) on ``data`` for ``steps``; ``options``: ``identity``,
    ``train_views`` (experiment fields) or model fields."""
    config = default_config("migs", "cpu", "humans")
    config.data = data
    config.identity = options.pop("identity", None)
    config.train_views = options.pop("train_views", None)
    for key, value in options.items():
        setattr(config.model, key, value)
    tc = config.trainer
    tc.max_iterations, tc.eval_every, tc.final_eval_every = steps, 0, 0
    tc.device, tc.threads = "cpu", threads
    trainer = Trainer(config, run_dir, scene_data_for(config))
    trainer.train()
    return trainer


def score(trainer: Trainer, data: Path, split: str, identity: int | None = None) -> list[dict]:
    frames = load_humans_split(data, split)
    if identity is not None:
        frames = frames.of_identity(identity)
    return evaluate_split(trainer.model, frames, None, show_progress=False)["views"]


def mean(views: list[dict], key: str) -> float:
    return sum(v[key] for v in views) / len(views)


def stored_parameters(trainer: Trainer, n: int, cp: bool) -> int:
    """What ``n`` identities cost: one CP tensor + shared networks, or n dense models."""
    model, cfg = trainer.model, trainer.config.model
    rows = 11 + cfg.feature_dim
    networks = sum(p.numel() for m in (model.skinning, model.deformation, model.colour)
                   for p in m.parameters())  # fmt: skip
    if cp:
        return (rows + n + cfg.n_gaussians) * cfg.rank + networks + n * cfg.embedding_dim
    return n * (cfg.n_gaussians * rows + networks + cfg.embedding_dim)


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--identities", type=int, default=6)
    parser.add_argument("--resolution", type=int, default=128)
    parser.add_argument("--steps-per-identity", type=int, default=1000)
    parser.add_argument("--finetune-frames", type=int, nargs="+", default=[5, 20])
    parser.add_argument("--finetune-steps", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output-dir", type=Path, default=Path("outputs/benchmarks"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    root = args.output_dir / f"migs_humans_{datetime.datetime.now():%Y-%m-%d_%H%M%S}"
    n, steps = args.identities, args.steps_per_identity
    data = ensure_humans_dataset(
        root / "data" / "humans", n_identities=n, resolution=args.resolution
    )
    newcomer = ensure_humans_dataset(
        root / "data" / "newcomer", seed=1000, n_identities=1, resolution=args.resolution
    )

    start = time.perf_counter()
    migs = train(root / "migs", data, n * steps, args.threads)
    migs_minutes = (time.perf_counter() - start) / 60
    results = {"migs": {s: score(migs, data, s) for s in ("test", "test_ood")}}
    baseline: dict[str, list] = {"test": [], "test_ood": []}
    start = time.perf_counter()
    for k in range(n):
        single = train(
            root / f"dense_{k}", data, steps, args.threads, identity=k, factorization="dense"
        )
        for split in baseline:
            baseline[split] += score(single, data, split, identity=k)
    baseline_minutes = (time.perf_counter() - start) / 60
    results["per-identity"] = baseline

    new_rows = []
    for frames in args.finetune_frames:
        fitted = train(root / f"new_migs_{frames}", newcomer, args.finetune_steps, args.threads,
                       train_views=frames, finetune_from=migs.run_dir)  # fmt: skip
        scratch = train(root / f"new_dense_{frames}", newcomer, args.finetune_steps, args.threads,
                        train_views=frames, factorization="dense")  # fmt: skip
        new_rows.append((frames, score(fitted, newcomer, "test"), score(scratch, newcomer, "test")))
    (root / "benchmark.json").write_text(json.dumps({"results": results}, indent=2))

    print()
    print(
        f"procedural humans: {n} identities, {args.resolution}x{args.resolution}, "
        f"migs --preset cpu "
        f"({migs.config.model.n_gaussians} Gaussians, R = {migs.config.model.rank}); "
        f"{n} x {steps} steps each side; {args.threads} threads on {os.cpu_count()} cores"
    )
    print("| measure | MIGS | per-identity |")
    print("|---|---|---|")
    print(f"| training time (min) | {migs_minutes:.1f} | {baseline_minutes:.1f} |")
    for split, label in (("test", "in-distribution"), ("test_ood", "out-of-distribution")):
        a, b = results["migs"][split], baseline[split]
        print(f"| PSNR {label} ({len(a)} frames) | {mean(a, 'psnr'):.2f} | {mean(b, 'psnr'):.2f} |")
        print(f"| SSIM {label} | {mean(a, 'ssim'):.4f} | {mean(b, 'ssim'):.4f} |")
    drops = [mean(r["test"], "psnr") - mean(r["test_ood"], "psnr") for r in results.values()]
    print(f"| PSNR drop in -> out of distribution | {drops[0]:.2f} | {drops[1]:.2f} |")
    for count in range(1, n + 1):
        cp, dense = stored_parameters(migs, count, True), stored_parameters(migs, count, False)
        label = f"{count} identit{'y' if count == 1 else 'ies'}"
        print(f"| parameters, {label} | {cp / 1e6:.3f}M | {dense / 1e6:.3f}M |")
    for frames, fitted, scratch in new_rows:
        print(
            f"| new identity, {frames} frames, {args.finetune_steps} steps: PSNR (scratch: dense) "
            f"| {mean(fitted, 'psnr'):.2f} | {mean(scratch, 'psnr'):.2f} |"
        )


if __name__ == "__main__":
    main()
