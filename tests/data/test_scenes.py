"""Scene presets and the lookup of a scene's data folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from tensorfields.data import locate
from tensorfields.data.errors import DataError, DataNotFoundError
from tensorfields.data.locate import find_scene_data
from tensorfields.data.procedural import scene_bounds
from tensorfields.data.scenes import ScenePreset, list_presets, load_preset

BLENDER_SCENES = ["chair", "drums", "ficus", "hotdog", "lego", "materials", "mic", "ship"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TF_DATA_DIR", "TF_SCENES_DIR", "TF_CACHE_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_repo_presets() -> None:
    assert list_presets() == sorted(["blocks", "humans", "zju_mocap", *BLENDER_SCENES])
    for name in BLENDER_SCENES:
        preset = load_preset(name)
        assert preset.name == name and preset.dataset == "nerf_synthetic"
        assert preset.aabb == [-1.5, -1.5, -1.5, 1.5, 1.5, 1.5]
        assert (preset.near, preset.far) == (2.0, 6.0)
        assert preset.background == [1.0, 1.0, 1.0] and preset.format == "blender"
        assert preset.overrides == {}


def test_blocks_preset_bounds_hold_the_shapes() -> None:
    preset = load_preset("blocks")
    assert preset.dataset == "procedural"
    bounds = scene_bounds("blocks")
    assert all(lo < b for lo, b in zip(preset.aabb[:3], bounds[:3], strict=True))
    assert all(b < hi for hi, b in zip(preset.aabb[3:], bounds[3:], strict=True))


def test_unknown_scene_lists_available() -> None:
    with pytest.raises(DataError) as info:
        load_preset("legoo")
    message = str(info.value)
    assert "unknown scene 'legoo'" in message and "blocks, chair" in message and "ship" in message
    with pytest.raises(DataError, match="unknown scene"):
        load_preset("../scenes/lego")


GOOD = """\
name: mine
dataset: nerf_synthetic
aabb: [-1, -1, -1, 1, 1, 1]
near: 0.5
far: 4
background: [0, 0, 0]
overrides:
  tensorf-vm: {n_iters: 100}
"""

BAD = {
    "malformed": ("aabb: [1, 2\nnear: 2", "malformed YAML at line"),
    "not a mapping": ("- 1\n- 2", "expected a mapping"),
    "missing far": (GOOD.replace("far: 4\n", ""), "missing field 'far'"),
    "short aabb": (GOOD.replace("[-1, -1, -1, 1, 1, 1]", "[1, 2]"), "aabb must be a list of 6"),
    "flat aabb": (GOOD.replace("[-1, -1, -1, 1, 1, 1]", "[0, 0, 0, 1, 0, 1]"), "min < max"),
    "near > far": (GOOD.replace("near: 0.5", "near: 9"), "near < far"),
    "text near": (GOOD.replace("near: 0.5", "near: close"), "near must be a finite number"),
    "background range": (GOOD.replace("[0, 0, 0]", "[0, 0, 255]"), "in [0, 1]"),
    "dataset": (GOOD.replace("nerf_synthetic", "llff"), "dataset must be one of"),
    "unknown field": (GOOD + "colour: red\n", "unknown field(s) ['colour']"),
    "name mismatch": (GOOD.replace("name: mine", "name: other"), "does not match"),
    "overrides": (GOOD.replace("{n_iters: 100}", "7"), "overrides must map"),
}


def test_custom_presets_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine.yaml").write_text(GOOD)
    monkeypatch.setenv("TF_SCENES_DIR", str(tmp_path))
    assert list_presets() == ["mine"]
    preset = load_preset("mine")
    assert preset.near == 0.5 and preset.far == 4.0 and preset.format == "auto"
    assert preset.overrides == {"tensorf-vm": {"n_iters": 100}}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_presets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    text, problem = BAD[case]
    (tmp_path / "mine.yaml").write_text(text)
    monkeypatch.setenv("TF_SCENES_DIR", str(tmp_path))
    with pytest.raises(DataError) as info:
        load_preset("mine")
    assert "mine.yaml" in str(info.value) and problem in str(info.value)


def make_data(folder: Path, marker: str = "transforms_train.json") -> Path:
    folder.mkdir(parents=True)
    (folder / marker).write_text("{}")
    return folder


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lego = load_preset("lego")
    monkeypatch.chdir(tmp_path)
    local = make_data(tmp_path / "data" / "nerf_synthetic" / "lego", "transforms.json")
    assert find_scene_data(lego) == local
    env = make_data(tmp_path / "env" / "nerf_synthetic" / "lego")
    monkeypatch.setenv("TF_DATA_DIR", str(tmp_path / "env"))
    assert find_scene_data(lego) == env
    explicit = make_data(tmp_path / "mine", "transforms_test.json")
    assert find_scene_data(lego, explicit) == explicit


def test_candidate_without_transforms_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "env" / "nerf_synthetic" / "lego").mkdir(parents=True)  # empty folder
    monkeypatch.setenv("TF_DATA_DIR", str(tmp_path / "env"))
    local = make_data(tmp_path / "data" / "nerf_synthetic" / "lego")
    assert find_scene_data(load_preset("lego")) == local


def test_not_found_lists_paths_and_remedies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TF_DATA_DIR", str(tmp_path / "env"))
    (tmp_path / "data" / "nerf_synthetic" / "ship").mkdir(parents=True)
    with pytest.raises(DataNotFoundError) as info:
        find_scene_data(load_preset("ship"))
    message = str(info.value)
    assert str(tmp_path / "env" / "nerf_synthetic" / "ship") in message
    assert str(tmp_path / "data" / "nerf_synthetic" / "ship") + " (from ./data): exists" in message
    assert "tf-download ship" in message and "tf-train --scene blocks" in message


def test_not_found_without_tf_data_dir_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataNotFoundError, match="TF_DATA_DIR is not set"):
        find_scene_data(load_preset("mic"))


def test_explicit_data_must_exist(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="nowhere.*does not exist"):
        find_scene_data(load_preset("lego"), tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataNotFoundError, match="empty holds no transforms"):
        find_scene_data(load_preset("lego"), tmp_path / "empty")


def test_procedural_scene_is_generated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = []

    def fake_ensure(name: str) -> Path:
        calls.append(name)
        return tmp_path / name

    monkeypatch.setattr(locate, "ensure_procedural_scene", fake_ensure)
    assert find_scene_data(load_preset("blocks")) == tmp_path / "blocks"
    assert calls == ["blocks"]


def test_preset_defaults() -> None:
    preset = ScenePreset("x", [0, 0, 0, 1, 1, 1], 1.0, 2.0, [1, 1, 1], "procedural")
    assert preset.overrides == {} and preset.format == "auto"
