"""The training loop: optimizer, schedules, progress, periodic evaluation and checkpoints."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from tensorfields.core.native import native_ops
from tensorfields.models.base import Model
from tensorfields.pipeline.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from tensorfields.pipeline.config import ExperimentConfig, config_to_dict, save_config
from tensorfields.pipeline.datamanager import make_datamanager
from tensorfields.pipeline.evaluator import evaluate_split
from tensorfields.pipeline.registry import build_model
from tensorfields.pipeline.scene_data import SceneData


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class Trainer:
    """Owns the model, its optimizer and the loop; methods plug in through :class:`Model`."""

    def __init__(self, config: ExperimentConfig, run_dir: Path, scene: SceneData):
        self.config = config
        self.run_dir = Path(run_dir)
        self.scene = scene
        tc = config.trainer
        if tc.threads:
            torch.set_num_threads(tc.threads)
        torch.manual_seed(tc.seed)
        self.device = resolve_device(tc.device)
        self.model: Model = build_model(config)
        self.model.prepare(scene.train)
        self.model.to(self.device)
        native_ops(self.device)  # compile the native core now, not inside the timed loop
        self.datamanager = make_datamanager(
            self.model.data_kind, scene.train, tc.batch_size, seed=tc.seed
        )
        self.step = 0
        self.lr_scale = 1.0
        self.train_seconds = 0.0
        self.optimizer = self._make_optimizer()
        self.history: list[dict] = []

    # -- optimizer ------------------------------------------------------------------------------
    def _make_optimizer(self) -> torch.optim.Optimizer:
        return self.model.make_optimizer(self.lr_scale)

    def _decay_lrs(self) -> None:
        """Exponential decay, each group towards its own ``lr_decay_target`` if it has one."""
        tc = self.config.trainer
        per_step = 1.0 / max(tc.max_iterations, 1)
        self.lr_scale *= tc.lr_decay_target**per_step
        for group in self.optimizer.param_groups:
            group["lr"] *= group.get("lr_decay_target", tc.lr_decay_target) ** per_step

    # -- checkpoints ----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoints" / "last.pt"

    def save(self) -> None:
        save_checkpoint(
            self.checkpoint_path,
            {
                "config": config_to_dict(self.config),
                "step": self.step,
                "lr_scale": self.lr_scale,
                "train_seconds": self.train_seconds,
                "model": self.model.state_for_checkpoint(),
                "optimizer": self.optimizer.state_dict(),
                "datamanager": self.datamanager.state_dict(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                "history": json.dumps(self.history),
            },
        )

    def resume(self) -> None:
        """Continue from the run directory's checkpoint: same step, schedules and RNG streams."""
        payload = load_checkpoint(latest_checkpoint(self.run_dir), map_location="cpu")
        self.model.load_checkpoint_state(payload["model"])
        self.model.to(self.device)
        self.step = payload["step"]
        self.lr_scale = payload["lr_scale"]
        self.train_seconds = payload["train_seconds"]
        self.optimizer = self._make_optimizer()
        self.optimizer.load_state_dict(payload["optimizer"])
        self.datamanager.load_state_dict(payload["datamanager"])
        torch.set_rng_state(payload["rng"])
        if payload.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(payload["cuda_rng"])
        self.history = json.loads(payload["history"])
        print(f"Resumed {self.run_dir} at step {self.step}")

    # -- loop -----------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        if self.model.before_step(self.step, self.datamanager):
            if self.config.trainer.lr_reset_on_rebuild:
                self.lr_scale = 1.0
            self.optimizer = self._make_optimizer()
        batch = self.datamanager.next_batch().to(self.device)
        output = self.model.render_batch(batch, training=True)
        losses = self.model.loss(output, batch.target, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.optimizer.step()
        self.model.after_optimizer_step(self.step, self.optimizer)
        self._decay_lrs()
        self.step += 1
        mse = float(losses["mse"].detach())
        return {
            "loss": float(losses["loss"].detach()),
            "mse": mse,
            "psnr": -10.0 * math.log10(max(mse, 1e-10)),
        }

    def train(self, on_step: Callable[[Trainer], None] | None = None) -> dict:
        """Train to max_iterations or the time budget; ``on_step(self)`` runs after each step."""
        tc = self.config.trainer
        self.run_dir.mkdir(parents=True, exist_ok=True)
        save_config(self.config, self.run_dir / "config.yaml")
        budget = None if tc.max_minutes is None else tc.max_minutes * 60.0
        columns = (
            TextColumn("[bold]train"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, refresh_per_second=2) as progress:
            task = progress.add_task("train", total=tc.max_iterations, completed=self.step, info="")
            rays_per_s = 0.0
            while self.step < tc.max_iterations:
                if budget is not None and self.train_seconds >= budget:
                    progress.console.print(
                        f"Time budget of {tc.max_minutes} min reached at step {self.step}"
                    )
                    break
                start = time.perf_counter()
                logs = self.train_step()
                message = self.model.after_step(self.step, logs)
                elapsed = time.perf_counter() - start
                if message:
                    progress.console.print(message)
                self.train_seconds += elapsed
                rays = self.datamanager.rays_per_batch
                rate = rays / elapsed
                rays_per_s = 0.9 * rays_per_s + 0.1 * rate if rays_per_s else rate
                remaining = (tc.max_iterations - self.step) * rays / rays_per_s
                if budget is not None:
                    remaining = min(remaining, budget - self.train_seconds)
                info = (
                    f"loss {logs['loss']:.4f}  psnr {logs['psnr']:.2f}  "
                    f"{rays_per_s / 1000:.1f}K rays/s  ETA {_clock(remaining)}"
                )
                if extra := self.model.progress_info():
                    info = f"{info}  {extra}"
                progress.update(task, completed=self.step, info=info)
                if not progress.console.is_terminal and self.step % 100 == 0:
                    progress.console.print(f"step {self.step}/{tc.max_iterations}  {info}")
                if self.step % 100 == 0:
                    self.history.append({"step": self.step, "seconds": self.train_seconds, **logs})
                if tc.eval_every and self.step % tc.eval_every == 0:
                    self.evaluate_val(progress)
                if tc.checkpoint_every and self.step % tc.checkpoint_every == 0:
                    self.save()
                if on_step is not None:
                    on_step(self)
        self.save()
        summary = self.write_metrics()
        return summary

    def evaluate_val(self, progress: Progress | None = None) -> None:
        """Render the first validation view, log its PSNR and write its side-by-side image."""
        split = self.scene.val
        if split is None or len(split) == 0:
            return
        result = evaluate_split(
            self.model,
            split,
            self.run_dir / "eval" / f"step_{self.step:06d}",
            indices=[0],
            depth_range=self.scene.depth_range,
            show_progress=False,
        )
        psnr = result["mean"]["psnr"]
        self.history.append({"step": self.step, "seconds": self.train_seconds, "val_psnr": psnr})
        if progress is not None:
            progress.console.print(f"step {self.step}: val {split.names[0]} PSNR {psnr:.2f} dB")

    def write_metrics(self) -> dict:
        seconds = max(self.train_seconds, 1e-9)
        summary = {
            "step": self.step,
            "train_seconds": self.train_seconds,
            "rays_per_second": self.step * self.datamanager.rays_per_batch / seconds,
            "history": self.history,
        }
        (self.run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
        return summary


def _clock(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
