"""SlimmeRF's picture: one trained model evaluated at every rank, quality against size."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from tensorfields.data.dataset import SceneSplit
from tensorfields.models.base import Model
from tensorfields.pipeline.evaluator import evaluate_split
from tensorfields.pipeline.lpips import LPIPS


def checkpoint_megabytes(model: Model) -> float:
    """Size of the model's checkpoint state as torch.save writes it."""
    buffer = io.BytesIO()
    torch.save(model.state_for_checkpoint(), buffer)
    return buffer.tell() / 2**20


def parameter_megabytes(model: Model) -> float:
    """The learned tensors alone (factors, basis, MLP), without buffers such as occupancy."""
    return sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20


def slimmed_sizes(model: Model, rank: int) -> dict[str, float]:
    """Sizes of the model that ``tf-export slim --rank`` would write (measured on a copy)."""
    slim = copy.deepcopy(model)
    slim.slim(rank)
    return {"file_mb": checkpoint_megabytes(slim), "params_mb": parameter_megabytes(slim)}


def rank_sweep(
    model: Model,
    split: SceneSplit,
    indices: list[int] | None = None,
    lpips: LPIPS | None = None,
    ranks: list[int] | None = None,
) -> list[dict]:
    """Mean metrics and slimmed size at each rank (default 1 .. the model's current rank).

    The model is left at the rank it came with."""
    trained = model.rank()
    if trained is None:
        raise ValueError(f"{type(model).__name__} has no component ranks to sweep")
    ranks = list(range(1, trained + 1)) if ranks is None else ranks
    rows = []
    columns = (TextColumn("rank sweep"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*columns, transient=True) as progress:
            task = progress.add_task("ranks", total=len(ranks))
            for rank in ranks:
                model.set_rank(rank)
                result = evaluate_split(model, split, None, indices, lpips, show_progress=False)
                rows.append({"rank": rank, **result["mean"], **slimmed_sizes(model, rank)})
                progress.advance(task)
    finally:
        model.set_rank(trained)
    return rows


def write_rank_sweep(rows: list[dict], out_dir: Path, title: str) -> tuple[Path, Path]:
    """``rank_sweep.json`` and ``rank_sweep.png`` (PSNR against checkpoint size, ranks marked)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, png_path = out_dir / "rank_sweep.json", out_dir / "rank_sweep.png"
    json_path.write_text(json.dumps({"title": title, "ranks": rows}, indent=2))
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    sizes, psnrs = [r["file_mb"] for r in rows], [r["psnr"] for r in rows]
    ax.plot(sizes, psnrs, marker="o")
    for row in rows:
        ax.annotate(
            str(row["rank"]),
            (row["file_mb"], row["psnr"]),
            textcoords="offset points",
            xytext=(4, -10),
            fontsize=8,
        )
    ax.set_xlabel("model size (MB, slimmed checkpoint)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path)
    plt.close(fig)
    return json_path, png_path


def print_rank_sweep(rows: list[dict], title: str) -> None:
    """The sweep as a markdown table (what the benchmark and tf-eval print)."""
    keys = [k for k in ("psnr", "ssim", "lpips") if rows and k in rows[0]]
    print(title)
    print("| rank | " + " | ".join(k.upper() for k in keys) + " | file MB | params MB |")
    print("|---" * (len(keys) + 3) + "|")
    for row in rows:
        metrics = " | ".join(f"{row[k]:.4f}" if k != "psnr" else f"{row[k]:.2f}" for k in keys)
        print(f"| {row['rank']} | {metrics} | {row['file_mb']:.1f} | {row['params_mb']:.1f} |")
