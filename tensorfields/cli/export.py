"""``tf-export``: write a trained run in another form. Today: ``slim``, SlimmeRF's smaller model."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from tensorfields.cli.errors import run_cli
from tensorfields.pipeline.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from tensorfields.pipeline.config import config_to_dict, load_config, save_config
from tensorfields.pipeline.registry import build_model


@dataclass
class ExportArgs:
    """Export a run. ``slim``: keep the first RANK density components (appearance in proportion)
    and drop the rest from the parameters; the result is a run directory that tf-eval and the
    other tools load like any other (at full rank of its smaller size)."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory written by tf-train."""
    kind: tyro.conf.Positional[Literal["slim"]]
    """What to export: 'slim'."""
    rank: int
    """Density rank to keep (SlimmeRF: appearance keeps 3x as many)."""
    output: Path | None = None
    """Where to write the exported run (default: <run_dir>/export/slim_rank<RANK>)."""


def main(args: list[str]) -> None:
    opts = tyro.cli(ExportArgs, args=args, prog="tf-export")
    config = load_config(opts.run_dir / "config.yaml")
    source = latest_checkpoint(opts.run_dir)
    payload = load_checkpoint(source)
    model = build_model(config)
    model.load_checkpoint_state(payload["model"])
    config.model = model.slim(opts.rank)
    out = opts.output or opts.run_dir / "export" / f"slim_rank{opts.rank}"
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    target = out / "checkpoints" / "last.pt"
    save_checkpoint(
        target,
        {
            "config": config_to_dict(config),
            "step": payload["step"],
            "model": model.state_for_checkpoint(),
            "exported_from": str(source),
        },
    )
    before, after = source.stat().st_size / 2**20, target.stat().st_size / 2**20
    print(f"slim rank {opts.rank}: {before:.1f} MB -> {after:.1f} MB, wrote {out}")


def entrypoint() -> None:
    run_cli(main, sys.argv[1:])


if __name__ == "__main__":
    entrypoint()
