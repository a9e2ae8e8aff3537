"""The rank sweep: every rank evaluated, sizes that shrink with the rank, files people look at."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import pytest

from tensorfields.models.base import Model
from tensorfields.models.tensorf import TensoRFModel
from tensorfields.pipeline.evaluator import evaluate_split
from tensorfields.pipeline.rank_sweep import (
    checkpoint_megabytes,
    rank_sweep,
    slimmed_sizes,
    write_rank_sweep,
)


def test_sweep_visits_every_rank_and_restores_the_model(tiny_config, blocks_scene) -> None:
    model = TensoRFModel(tiny_config().model)  # 4 density components
    model.set_rank(3)
    model.eval()
    rows = rank_sweep(model, blocks_scene.test, indices=[0])
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert model.rank() == 3 and not model.training  # left as it came
    # Each row is the masked model's evaluation at that rank ...
    model.set_rank(2)
    at_two = evaluate_split(model, blocks_scene.test, None, [0], show_progress=False)
    assert rows[1]["psnr"] == pytest.approx(at_two["mean"]["psnr"], abs=1e-6)
    # ... and the size of the model slimmed to it: smaller for every rank dropped.
    sizes = [r["file_mb"] for r in rows]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert all(r["params_mb"] < r["file_mb"] for r in rows)
    assert rows[1]["file_mb"] == pytest.approx(slimmed_sizes(model, 2)["file_mb"])
    assert model.rank() == 2 and model.config.density_components == 4  # the copy was slimmed
    assert checkpoint_megabytes(model) > rows[-1]["file_mb"]  # 4 components > 3


def test_sweep_files(tmp_path: Path) -> None:
    rows = [
        {"rank": r, "psnr": 20.0 + r, "ssim": 0.8, "file_mb": 1.0 + r, "params_mb": r}
        for r in (1, 2, 3)
    ]
    json_path, png_path = write_rank_sweep(rows, tmp_path / "sweep", "a title")
    assert json.loads(json_path.read_text()) == {"title": "a title", "ranks": rows}
    image = iio.imread(png_path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0


def test_models_without_ranks_refuse_a_sweep(blocks_scene) -> None:
    with pytest.raises(ValueError, match="Model has no component ranks to sweep"):
        rank_sweep(Model(), blocks_scene.test)
