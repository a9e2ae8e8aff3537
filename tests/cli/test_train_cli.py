"""``tf-train`` argument parsing: method, presets, scene presets, user flags and --resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from tensorfields.data.errors import DataError
from tensorfields.data.scenes import load_preset
from tensorfields.pipeline.config import save_config
from tensorfields.pipeline.registry import method_config
from tensorfields.pipeline.setup import default_config, parse_train_args


def test_no_method_picks_tensorf_vm() -> None:
    config, run_dir = parse_train_args([])
    assert config.method == "tensorf-vm" and config.model.decomposition == "vm"
    assert config.preset == "paper" and config.scene == "lego"
    assert run_dir.parent == Path("outputs") / "lego" / "tensorf-vm"
    config, _ = parse_train_args(["--scene", "blocks"])
    assert config.method == "tensorf-vm"


def test_method_positional() -> None:
    config, run_dir = parse_train_args(["tensorf-cp", "--output-dir", "/tmp/o"])
    assert config.method == "tensorf-cp" and config.model.decomposition == "cp"
    assert config.model.density_components == 96  # official CP recipe
    assert run_dir.parent == Path("/tmp/o/lego/tensorf-cp")


def test_preset_cpu_is_applied() -> None:
    paper, _ = parse_train_args([])
    config, _ = parse_train_args(["--preset", "cpu"])
    expected = method_config("tensorf-vm", "cpu")
    assert config.preset == "cpu"
    assert config.model.voxels_init == expected.model.voxels_init == 64**3
    assert config.model.upsample_steps == expected.model.upsample_steps
    assert config.model.occupancy_init == "carve"
    assert config.trainer.max_iterations == expected.trainer.max_iterations
    assert config.trainer.max_iterations < paper.trainer.max_iterations
    assert paper.model.voxels_init == 128**3


def test_scene_blocks_takes_its_box() -> None:
    config, run_dir = parse_train_args(["--scene", "blocks"])
    preset = load_preset("blocks")
    assert config.scene == "blocks"
    assert config.model.aabb == tuple(preset.aabb)
    assert (config.model.near, config.model.far) == (preset.near, preset.far)
    assert config.model.background == tuple(preset.background)
    assert run_dir.parent == Path("outputs") / "blocks" / "tensorf-vm"
    lego, _ = parse_train_args(["--scene=lego"])
    assert lego.model.aabb != config.model.aabb


def test_explicit_flags_override_presets() -> None:
    config, _ = parse_train_args(
        [
            "tensorf-cp",
            "--preset", "cpu",
            "--scene", "blocks",
            "--trainer.max-iterations", "7",
            "--model.voxels-init", "1000",
            "--model.aabb", "-2", "-2", "-2", "2", "2", "2",
            "--downscale", "2",
        ]
    )  # fmt: skip
    assert config.preset == "cpu" and config.method == "tensorf-cp"
    assert config.trainer.max_iterations == 7
    assert config.model.voxels_init == 1000
    assert config.model.aabb == (-2.0, -2.0, -2.0, 2.0, 2.0, 2.0)  # over the scene's box
    assert config.downscale == 2.0
    untouched = default_config("tensorf-cp", "cpu", "blocks").model.voxels_final
    assert config.model.voxels_final == untouched  # from the preset + scene overrides


def test_scene_overrides_apply_per_method() -> None:
    blocks = default_config("tensorf-vm", "paper", "blocks")
    assert blocks.trainer.max_iterations == 1000  # scenes/blocks.yaml
    assert blocks.model.occupancy_init == "carve"
    assert default_config("tensorf-vm", "paper", "lego").trainer.max_iterations == 30000


def test_unknown_method_preset_and_scene() -> None:
    with pytest.raises(ValueError, match="unknown method 'nerfacto'"):
        parse_train_args(["nerfacto"])
    with pytest.raises(ValueError, match="no preset 'fast'"):
        parse_train_args(["--preset", "fast"])
    with pytest.raises(DataError, match="unknown scene 'legoo'"):
        parse_train_args(["--scene", "legoo"])


def test_resume_of_a_non_run_dir(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a run directory") as info:
        parse_train_args(["--resume", str(tmp_path)])
    assert str(tmp_path) in str(info.value)
    with pytest.raises(FileNotFoundError, match="not a run directory"):
        parse_train_args(["--resume", str(tmp_path / "missing")])
    (tmp_path / "config.yaml").write_text("method: [unclosed\n")
    with pytest.raises(ValueError, match="not a valid tensorfields config"):
        parse_train_args(["--resume", str(tmp_path)])


def test_resume_reads_the_run_config(tmp_path: Path) -> None:
    saved, _ = parse_train_args(["tensorf-cp", "--scene", "blocks", "--trainer.batch-size", "77"])
    save_config(saved, tmp_path / "config.yaml")
    config, run_dir = parse_train_args(["--resume", str(tmp_path), "--trainer.max-iterations", "9"])
    assert run_dir == tmp_path and config.resume == tmp_path
    assert config.method == "tensorf-cp" and config.scene == "blocks"
    assert config.trainer.batch_size == 77 and config.trainer.max_iterations == 9
    with pytest.raises(ValueError, match="trained with tensorf-cp, not tensorf-vm"):
        parse_train_args(["tensorf-vm", "--resume", str(tmp_path)])
