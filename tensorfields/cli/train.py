"""``tf-train``: train a method on a scene, or resume a run."""

from __future__ import annotations

import sys

from tensorfields.cli.errors import run_cli
from tensorfields.pipeline.evaluator import evaluate_split
from tensorfields.pipeline.lpips import load_lpips
from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.setup import parse_train_args
from tensorfields.pipeline.trainer import Trainer
from tensorfields.viewer import import_viser


def main(args: list[str]) -> None:
    config, run_dir = parse_train_args(args)
    if config.viewer.enabled:
        import_viser()  # fail now, not after loading the data
    scene = scene_data_for(config)
    trainer = Trainer(config, run_dir, scene)
    if config.resume is not None:
        trainer.resume()
    viewer = start_viewer(trainer, scene) if config.viewer.enabled else None
    print(f"Training {config.method} on {config.scene} ({scene.root}) -> {run_dir}")
    try:
        train_and_test(trainer, scene, run_dir, viewer)
    except BaseException:
        if viewer is not None:
            viewer.stop()
        raise
    if viewer is not None:
        viewer.training_finished(trainer)
        if config.viewer.keep_alive:
            print(f"Training finished; the viewer keeps serving at {viewer.url} (Ctrl-C stops)")
            viewer.serve_forever()
        else:
            print("Training finished; stopping the viewer (--viewer.keep-alive keeps it open)")
            viewer.stop()


def start_viewer(trainer: Trainer, scene):
    """The live viewer on the trainer's model, with the training cameras and the scene box."""
    from tensorfields.viewer.server import Viewer  # imports viser

    vc = trainer.config.viewer
    return Viewer(
        trainer.model,
        trainer.config.model.aabb,
        scene.depth_range,
        train_split=scene.train,
        host=vc.host,
        port=vc.port,
        max_resolution=vc.max_resolution,
    )


def train_and_test(trainer: Trainer, scene, run_dir, viewer=None) -> None:
    """Train (the viewer, if any, hooked to every step), then score the test views."""
    config = trainer.config
    summary = trainer.train(on_step=None if viewer is None else viewer.training_hook())
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
