"""Render a split, score it (PSNR, SSIM, LPIPS when available) and write side-by-side PNGs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tensorfields.data.dataset import SceneSplit
from tensorfields.models.base import Model
from tensorfields.pipeline.images import colorize_depth, write_side_by_side
from tensorfields.pipeline.lpips import LPIPS, lpips_distance
from tensorfields.pipeline.metrics import psnr, ssim


@torch.no_grad()
def evaluate_split(
    model: Model,
    split: SceneSplit,
    out_dir: Path | None,
    indices: list[int] | None = None,
    lpips: LPIPS | None = None,
    depth_range: tuple[float, float] = (2.0, 6.0),
    show_progress: bool = True,
) -> dict:
    """Per-view and mean metrics; PNGs ``ground truth | render | depth`` into ``out_dir``."""
    was_training = model.training
    model.eval()
    indices = list(range(len(split))) if indices is None else indices
    device = next(model.parameters()).device
    views = []
    columns = (TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not show_progress, transient=True) as progress:
        task = progress.add_task("eval", total=len(indices))
        for i in indices:
            start = time.perf_counter()
            out = model.render_view(split, i)
            seconds = time.perf_counter() - start
            gt = split.images[i].to(device)
            rgb = out.rgb.clamp(0, 1)
            view = {"name": split.names[i], "psnr": psnr(rgb, gt), "ssim": ssim(rgb, gt)}
            if lpips is not None:
                view["lpips"] = lpips_distance(lpips, rgb, gt)
            view["seconds"] = seconds
            views.append(view)
            if out_dir is not None:
                depth = colorize_depth(out.depth, out.accumulation, *depth_range)
                name = Path(split.names[i]).name
                write_side_by_side(Path(out_dir) / f"{name}.png", [gt, rgb, depth])
            progress.advance(task)
    model.train(was_training)
    keys = [k for k in ("psnr", "ssim", "lpips", "seconds") if views and k in views[0]]
    mean = {k: sum(v[k] for v in views) / len(views) for k in keys}
    result = {"mean": mean, "views": views}
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / "metrics.json").write_text(json.dumps(result, indent=2))
    return result
