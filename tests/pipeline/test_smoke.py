"""Every registered method trains two steps through ``tf-train``, then ``tf-eval`` scores it."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import pytest

from tensorfields.cli import eval as eval_cli
from tensorfields.cli import export as export_cli
from tensorfields.cli import train as train_cli
from tensorfields.cli.errors import run_cli
from tensorfields.pipeline.checkpoint import load_checkpoint
from tensorfields.pipeline.config import load_config
from tensorfields.pipeline.registry import METHODS

SMALL = [
    "--scene", "blocks",
    "--downscale", "4",
    "--trainer.max-iterations", "2",
    "--trainer.batch-size", "256",
    "--trainer.eval-every", "0",
    "--trainer.final-eval-every", "0",
    "--trainer.device", "cpu",
]  # fmt: skip
# Model sizes: a 16^3 grid, a 2-step coarse stage for Strivec's placement, 500 Gaussians.
TINY_MODEL = {
    "strivec": ["--model.coarse-steps", "2", "--model.coarse-voxels", "4096"],
    "splat": ["--model.init-count", "500"],
}
GRID_MODEL = ["--model.voxels-init", "4096"]


def small(method: str) -> list[str]:
    return [method, *SMALL, *TINY_MODEL.get(method, GRID_MODEL)]


def _only_run_dir(output_dir: Path, method: str) -> Path:
    runs = sorted((output_dir / "blocks" / method).iterdir())
    assert len(runs) == 1, runs
    return runs[0]


# migs trains on articulated bodies, not on blocks: its smoke run is in tests/models/test_migs.py.
@pytest.mark.parametrize("method", sorted(set(METHODS) - {"migs"}))
def test_train_then_eval(method: str, tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    train_cli.main([*small(method), "--output-dir", str(out)])
    run_dir = _only_run_dir(out, method)

    config = load_config(run_dir / "config.yaml")
    assert config.method == method and config.scene == "blocks"
    assert config.trainer.max_iterations == 2
    if method == "strivec":
        assert config.model.coarse_steps == 2
    elif method == "splat":
        assert config.model.init_count == 500
    else:
        assert config.model.voxels_init == 4096
        assert config.model.decomposition == {"tensorf-cp": "cp"}.get(method, "vm")
    assert load_checkpoint(run_dir / "checkpoints" / "last.pt")["step"] == 2
    assert json.loads((run_dir / "metrics.json").read_text())["step"] == 2

    eval_cli.main([str(run_dir), "--no-lpips", "--every", "4", "--device", "cpu"])
    eval_dir = run_dir / "eval" / "test"
    result = json.loads((eval_dir / "metrics.json").read_text())
    assert len(result["views"]) == 2  # 8 test views, every 4th
    assert {"psnr", "ssim"} <= set(result["mean"]) and "lpips" not in result["mean"]
    assert all(0.0 < v["psnr"] < 100.0 for v in result["views"])
    pngs = sorted(eval_dir.glob("*.png"))
    assert [p.stem for p in pngs] == [v["name"].rsplit("/", 1)[-1] for v in result["views"]]
    for png in pngs:
        image = iio.imread(png)
        assert image.shape[:2] == (25, 3 * 25)  # ground truth | render | depth
    if method == "splat":
        _export_and_reload_splats(run_dir, out, result)


def _export_and_reload_splats(run_dir: Path, out: Path, result: dict) -> None:
    """tf-export ply, then a 0-step run started from that PLY scores the same."""
    export_cli.main([str(run_dir), "ply"])
    ply = run_dir / "export" / "splats.ply"
    reloaded = out / "reloaded"
    train_cli.main([*small("splat"), "--model.init-splats", str(ply), "--output-dir",
                    str(reloaded), "--trainer.max-iterations", "0"])  # fmt: skip
    reload_dir = _only_run_dir(reloaded, "splat")
    eval_cli.main([str(reload_dir), "--no-lpips", "--every", "4", "--device", "cpu"])
    again = json.loads((reload_dir / "eval" / "test" / "metrics.json").read_text())
    for a, b in zip(again["views"], result["views"], strict=True):
        assert a["psnr"] == pytest.approx(b["psnr"], abs=1e-4)


def test_eval_at_a_lower_rank(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``tf-eval --rank r``: test-time slimming of a SlimmeRF run, next to the full-rank eval."""
    out = tmp_path / "outputs"
    # υ = 0: the rank grows at step 2, the first with a previous loss to compare.
    train_cli.main([*small("slimmerf"), "--model.ranks.threshold", "0", "--output-dir", str(out)])
    run_dir = _only_run_dir(out, "slimmerf")
    eval_cli.main([str(run_dir), "--no-lpips", "--every", "4", "--device", "cpu", "--rank", "1"])
    result = json.loads((run_dir / "eval" / "test_rank1" / "metrics.json").read_text())
    assert len(result["views"]) == 2 and "rank 1" in capsys.readouterr().out
    with pytest.raises(ValueError, match=r"rank must be in \[1, 16\]"):
        eval_cli.main([str(run_dir), "--no-lpips", "--device", "cpu", "--rank", "17"])

    # tf-export slim: a smaller run that evaluates like the masked one.
    for rank in (1, 16):
        export_cli.main([str(run_dir), "slim", "--rank", str(rank)])
    slim_dir = run_dir / "export" / "slim_rank1"
    size = {r: (run_dir / "export" / f"slim_rank{r}" / "checkpoints" / "last.pt").stat().st_size
            for r in (1, 16)}  # fmt: skip
    # 15 of 16 density and 45 of 48 appearance components gone: (15 + 45) * (3 planes of
    # 17x17, 13x17, 13x17 + 3 lines) float32 values.
    assert size[16] - size[1] >= 60 * (17 * 17 + 2 * 13 * 17 + 13 + 2 * 17) * 4
    slim_config = load_config(slim_dir / "config.yaml")
    assert slim_config.model.density_components == 1
    assert slim_config.model.appearance_components == 3
    eval_cli.main([str(slim_dir), "--no-lpips", "--every", "4", "--device", "cpu"])
    slim = json.loads((slim_dir / "eval" / "test" / "metrics.json").read_text())
    for a, b in zip(slim["views"], result["views"], strict=True):
        assert abs(a["psnr"] - b["psnr"]) < 1e-3
        images = [
            iio.imread(d / f"{a['name'].rsplit('/', 1)[-1]}.png")
            for d in (slim_dir / "eval" / "test", run_dir / "eval" / "test_rank1")
        ]
        assert abs(images[0].astype(int) - images[1].astype(int)).max() <= 1

    # tf-eval --rank-sweep: ranks 1 .. the trained 2, to JSON and a plot.
    eval_cli.main([str(run_dir), "--no-lpips", "--every", "4", "--device", "cpu", "--rank-sweep"])
    sweep_dir = run_dir / "eval" / "test_rank_sweep"
    sweep = json.loads((sweep_dir / "rank_sweep.json").read_text())
    assert [r["rank"] for r in sweep["ranks"]] == [1, 2]
    assert sweep["ranks"][0]["psnr"] == pytest.approx(result["mean"]["psnr"], abs=1e-3)
    assert (sweep_dir / "rank_sweep.png").stat().st_size > 0
    assert "| rank | PSNR | SSIM | file MB | params MB |" in capsys.readouterr().out
    with pytest.raises(ValueError, match="exclude each other"):
        eval_cli.main([str(run_dir), "--rank", "1", "--rank-sweep"])


def test_unknown_method_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["nerfacto", "--scene", "blocks", "--output-dir", str(tmp_path)]
    with pytest.raises(ValueError, match="unknown method 'nerfacto'.*tensorf-vm"):
        train_cli.main(args)
    with pytest.raises(SystemExit) as info:
        run_cli(train_cli.main, args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: unknown method 'nerfacto'" in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing was written


def test_unknown_scene_is_a_clear_error(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(train_cli.main, ["--scene", "legoo"])
    assert info.value.code == 2
    assert "unknown scene 'legoo'" in capsys.readouterr().err


def test_eval_of_a_non_run_dir_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(eval_cli.main, [str(tmp_path), "--no-lpips"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "config.yaml") in err
