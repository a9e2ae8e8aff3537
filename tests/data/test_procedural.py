"""The procedural ``blocks`` scene: ray casting, caching, atomic writes, Blender layout."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from tensorfields.data import procedural
from tensorfields.data.blender import load_blender_split
from tensorfields.data.procedural import (
    cast_rays,
    ensure_procedural_scene,
    look_at_origin,
    render_view,
)

TINY = {"resolution": 12, "n_train": 3, "n_val": 2, "n_test": 2}


def test_generates_blender_layout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = ensure_procedural_scene(cache_dir=tmp_path / "blocks", **TINY)
    assert folder == tmp_path / "blocks"
    assert "Rendering procedural scene 'blocks'" in capsys.readouterr().err
    for split, n in (("train", 3), ("val", 2), ("test", 2)):
        data = load_blender_split(folder, split)
        assert data.images.shape == (n, 12, 12, 3)
        assert data.names == [f"r_{i}" for i in range(n)]
    meta = json.loads((folder / "transforms_train.json").read_text())
    assert meta["frames"][0]["file_path"] == "./train/r_0"
    assert [p.name for p in tmp_path.iterdir()] == ["blocks"]  # no temp folders left


def test_second_call_reuses_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = ensure_procedural_scene(cache_dir=tmp_path / "blocks", **TINY)
    capsys.readouterr()

    def no_render(*args: object) -> None:
        raise AssertionError("rendered again")

    monkeypatch.setattr(procedural, "_render_scene", no_render)
    start = time.perf_counter()
    assert ensure_procedural_scene(cache_dir=folder, **TINY) == folder
    assert time.perf_counter() - start < 0.5
    assert capsys.readouterr().err == ""


def test_changed_parameters_rerender(tmp_path: Path) -> None:
    folder = ensure_procedural_scene(cache_dir=tmp_path / "blocks", **TINY)
    ensure_procedural_scene(cache_dir=folder, **{**TINY, "resolution": 8})
    assert json.loads((folder / "scene_info.json").read_text())["resolution"] == 8
    assert load_blender_split(folder, "val").images.shape == (2, 8, 8, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocks"]


def test_interrupted_render_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    calls = []

    def failing_render(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        if len(calls) > 2:
            raise KeyboardInterrupt
        return np.zeros((12, 12, 4))

    monkeypatch.setattr(procedural, "render_view", failing_render)
    with pytest.raises(KeyboardInterrupt):
        ensure_procedural_scene(cache_dir=tmp_path / "blocks", **TINY)
    assert list(tmp_path.iterdir()) == []


def test_default_cache_dir_uses_tf_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TF_CACHE_DIR", str(tmp_path))
    assert procedural.default_cache_dir() == tmp_path / "scenes" / "blocks"
    monkeypatch.delenv("TF_CACHE_DIR")
    assert procedural.default_cache_dir("x") == Path.home() / ".cache/tensorfields/scenes/x"


def test_test_poses_differ_from_train(tmp_path: Path) -> None:
    folder = ensure_procedural_scene(cache_dir=tmp_path / "blocks", **TINY)
    train = load_blender_split(folder, "train").cameras.c2w[:, :3, 3]
    test = load_blender_split(folder, "test").cameras.c2w[:, :3, 3]
    distances = (train[:, None] - test[None]).norm(dim=-1)
    assert distances.min() > 0.1
    assert np.allclose(train.norm(dim=-1), 4.0, atol=1e-4)
    assert (train[:, 2] > 0).all()  # upper hemisphere


def test_centre_pixel_hits_and_far_corner_misses() -> None:
    near = render_view(look_at_origin(np.array([2.0, -3.0, 2.0])), 21, 21)
    assert near.shape == (21, 21, 4)
    assert near[10, 10, 3] == 1.0
    far = render_view(look_at_origin(np.array([0.0, -20.0, 10.0])), 21, 21)
    assert far[10, 10, 3] == 1.0
    assert far[0, 0, 3] == 0.0 and far[-1, -1, 3] == 0.0


def test_edges_are_antialiased_and_shading_varies() -> None:
    rgba = render_view(look_at_origin(np.array([3.0, 2.0, 2.0])), 40, 40)
    alpha = rgba[..., 3]
    assert ((alpha > 0) & (alpha < 1)).any()
    red = rgba[(alpha == 1) & (rgba[..., 0] > 2 * rgba[..., 1])]
    assert red[:, 0].max() - red[:, 0].min() > 0.1  # lit and shaded faces differ


def test_rays_hit_cylinder_cap_and_box_side() -> None:
    origins = np.array([[0.55, 0.5, 5.0], [0.0, -5.0, 0.0], [5.0, 5.0, 5.0]])
    dirs = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    color, hit = cast_rays(origins, dirs)
    assert hit.tolist() == [1.0, 1.0, 0.0]
    green = np.array([0.1, 0.8, 0.2])
    np.testing.assert_allclose(color[0] / color[0].max(), green / green.max(), rtol=1e-6)
    assert color[1, 0] > color[1, 1]  # the red box, seen from -y
