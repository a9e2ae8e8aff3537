"""``tf-export``: write a trained run in another form: ``slim`` (SlimmeRF's smaller model) or
``ply`` (the Gaussians of a splat run, in the 3DGS layout splat viewers read)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from tensorfields.cli.errors import run_cli
from tensorfields.data.gaussian_ply import write_gaussian_ply
from tensorfields.pipeline.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from tensorfields.pipeline.config import config_to_dict, load_config, save_config
from tensorfields.pipeline.registry import build_model


@dataclass
class ExportArgs:
    """Export a run. ``slim``: keep the first RANK density components (appearance in proportion)
    and drop the rest from the parameters; the result is a run directory that tf-eval and the
    other tools load like any other (at full rank of its smaller size). ``ply``: write a splat
    run's Gaussians as a 3DGS-layout PLY."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory written by tf-train."""
    kind: tyro.conf.Positional[Literal["slim", "ply"]]
    """What to export: 'slim' or 'ply'."""
    rank: int | None = None
    """For 'slim': density rank to keep (SlimmeRF: appearance keeps 3x as many)."""
    output: Path | None = None
    """Where to write (default: <run_dir>/export/slim_rank<RANK> or <run_dir>/export/splats.ply)."""


def main(args: list[str]) -> None:
    opts = tyro.cli(ExportArgs, args=args, prog="tf-export")
    config = load_config(opts.run_dir / "config.yaml")
    source = latest_checkpoint(opts.run_dir)
    payload = load_checkpoint(source)
    model = build_model(config)
    model.load_checkpoint_state(payload["model"])
    if opts.kind == "ply":
        out = opts.output or opts.run_dir / "export" / "splats.ply"
        splats = model.export_splats()
        write_gaussian_ply(out, splats)
        print(f"{len(splats['means'])} Gaussians -> {out}")
        return
    if opts.rank is None:
        raise ValueError("tf-export slim needs --rank")
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
