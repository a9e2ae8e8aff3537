"""``tf-train``: train a method on a scene, or resume a run."""

from __future__ import annotations

import sys

from tensorfields.cli.errors import run_cli
from tensorfields.pipeline.evaluator import evaluate_split
from tensorfields.pipeline.lpips import load_lpips
from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.setup import parse_train_args
from tensorfields.pipeline.trainer import Trainer


def main(args: list[str]) -> None:
    config, run_dir = parse_train_args(args)
    scene = scene_data_for(config)
    trainer = Trainer(config, run_dir, scene)
    if config.resume is not None:
        trainer.resume()
    print(f"Training {config.method} on {config.scene} ({scene.root}) -> {run_dir}")
    summary = trainer.train()
    print(
        f"Done: {summary['step']} steps in {summary['train_seconds'] / 60:.1f} min, "
        f"{summary['rays_per_second'] / 1000:.1f}K rays/s"
    )
    every = config.trainer.final_eval_every
    if every:
        split = scene.test
        result = evaluate_split(
            trainer.model,
            split,
            run_dir / "eval" / "test",
            indices=list(range(0, len(split), every)),
            lpips=load_lpips(trainer.device),
            depth_range=scene.depth_range,
        )
        mean = result["mean"]
        print("Test: " + "  ".join(f"{k} {v:.4f}" for k, v in mean.items()))


def entrypoint() -> None:
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    entrypoint()
