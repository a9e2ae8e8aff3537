"""``tf-export``: write a trained run in another form: ``slim`` (SlimmeRF's smaller model),
``ply`` (the Gaussians of a splat run, in the 3DGS layout splat viewers read), ``mesh``
(marching cubes on a density field) or ``pointcloud`` (rendered depth back-projected)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import tyro

from tensorfields.cli.errors import run_cli
from tensorfields.data.gaussian_ply import write_gaussian_ply
from tensorfields.pipeline.checkpoint import save_checkpoint
from tensorfields.pipeline.config import config_to_dict, save_config
from tensorfields.pipeline.mesh_export import extract_model_mesh, write_mesh
from tensorfields.pipeline.point_cloud_export import extract_point_cloud, write_point_cloud
from tensorfields.pipeline.runs import load_run
from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.trainer import resolve_device


@dataclass
class ExportArgs:
    """Export a run. ``slim``: keep the first RANK density components (appearance in proportion)
    and drop the rest from the parameters; the result is a run directory that tf-eval and the
    other tools load like any other (at full rank of its smaller size). ``ply``: write a splat
    run's Gaussians as a 3DGS-layout PLY. ``mesh``: marching cubes on the density field of a
    ray-marched run (PLY or OBJ, vertex colours from the appearance branch seen head-on).
    ``pointcloud``: render the training views and turn each opaque pixel into a coloured point
    at its depth (any method)."""

    run_dir: tyro.conf.Positional[Path]
    """Run directory written by tf-train."""
    kind: tyro.conf.Positional[Literal["slim", "ply", "mesh", "pointcloud"]]
    """What to export: 'slim', 'ply', 'mesh' or 'pointcloud'."""
    rank: int | None = None
    """For 'slim': density rank to keep (SlimmeRF: appearance keeps 3x as many)."""
    resolution: int = 256
    """For 'mesh': grid cells along the longest side of the field's box (cubic cells)."""
    level: float | None = None
    """For 'mesh': density of the surface, in the renderer's units (per world length, the
    distance scale included: a step of length d has alpha 1 - exp(-level * d)). Default:
    TensoRF's, alpha 0.005 over one marching step of the run."""
    format: Literal["ply", "obj"] = "ply"
    """For 'mesh': 'ply' (binary, uchar colours) or 'obj' (text, 'v x y z r g b')."""
    every: int = 1
    """For 'pointcloud': render every N-th training view."""
    max_points: int = 1_000_000
    """For 'pointcloud': keep at most this many points (a seeded uniform sample)."""
    min_accumulation: float = 0.9
    """For 'pointcloud': a pixel becomes a point when its accumulated opacity exceeds this."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """For 'mesh' and 'pointcloud': 'auto', 'cpu' or 'cuda'."""
    output: Path | None = None
    """Where to write (default: <run_dir>/export/ slim_rank<RANK>, splats.ply, mesh.<format>
    or pointcloud.ply)."""


def main(args: list[str]) -> None:
    opts = tyro.cli(ExportArgs, args=args, prog="tf-export")
    config, model, step, source, _ = load_run(opts.run_dir)
    export = opts.run_dir / "export"
    if opts.kind == "ply":
        out = opts.output or export / "splats.ply"
        splats = model.export_splats()
        write_gaussian_ply(out, splats)
        print(f"{len(splats['means'])} Gaussians -> {out}")
    elif opts.kind == "mesh":
        out = opts.output or export / f"mesh.{opts.format}"
        model.to(resolve_device(opts.device))
        mesh = extract_model_mesh(model, opts.resolution, opts.level)
        write_mesh(out, mesh, opts.format)
        print(f"mesh: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces -> {out}")
    elif opts.kind == "pointcloud":
        out = opts.output or export / "pointcloud.ply"
        model.to(resolve_device(opts.device))
        split = scene_data_for(config).train
        xyz, rgb = extract_point_cloud(
            model, split, opts.every, opts.max_points, opts.min_accumulation
        )
        write_point_cloud(out, xyz, rgb)
        print(f"point cloud: {len(xyz)} points -> {out}")
    else:
        export_slim(opts, config, step, source, model)


def export_slim(opts: ExportArgs, config, step: int, source: Path, model) -> None:
    """A smaller run directory holding the first ``opts.rank`` components only."""
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
            "step": step,
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
