"""Viewer frames without a browser: camera conversion, resolution policy, render modes, controls,
and training steps and renders taking turns on the model."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from tensorfields.core.projection import quat_to_rotmat
from tensorfields.pipeline.trainer import Trainer
from tensorfields.viewer.camera import (
    browser_camera,
    c2w_to_pose,
    frame_size,
    look_at,
    pose_to_c2w,
)
from tensorfields.viewer.render import MODES, ModelAccess, ViewerRenderer, adaptive_size
from tensorfields.viewer.scene import box_edges

# Poses viser 1.1.1's browser client reported (camera.position, camera.wxyz) for a camera
# looking at the origin with +z up: its start pose and its default initial camera.
BROWSER_POSES = [
    ((-5.0, 0.0, 0.0), (-0.5, 0.5, -0.5, 0.5)),
    ((3.0, 3.0, 3.0), (-0.1759199, 0.33985114, 0.82047324, -0.4247082)),
]


@pytest.mark.parametrize(("position", "wxyz"), BROWSER_POSES)
def test_browser_pose_is_opencv_c2w(position, wxyz) -> None:
    """viser's wxyz is our OpenCV rotation as is: same matrix as look_at, up +z."""
    expected = look_at(position, (0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0))
    np.testing.assert_allclose(pose_to_c2w(position, wxyz), expected, atol=1e-6)
    # The origin projects to the image centre; a point above it to the upper half.
    camera = browser_camera(position, wxyz, fov=1.0, aspect=1.5, long_side=60)
    w2c = camera.viewmats()[0].double()
    for point, upper in (((0.0, 0.0, 0.0), False), ((0.0, 0.0, 0.5), True)):
        p = w2c[:3, :3] @ torch.tensor(point, dtype=torch.float64) + w2c[:3, 3]
        u = float(camera.fx[0] * p[0] / p[2] + camera.cx[0])
        v = float(camera.fy[0] * p[1] / p[2] + camera.cy[0])
        assert u == pytest.approx(30.0, abs=1e-3)
        assert (v < 20.0 - 1.0) if upper else v == pytest.approx(20.0, abs=1e-3)


def test_pose_round_trip() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        c2w = look_at(rng.normal(size=3) * 3, rng.normal(size=3), up=rng.normal(size=3))
        position, wxyz = c2w_to_pose(c2w)
        assert wxyz[0] >= 0 and np.linalg.norm(wxyz) == pytest.approx(1.0)
        np.testing.assert_allclose(pose_to_c2w(position, wxyz), c2w, atol=1e-9)
        flipped = quat_to_rotmat(torch.from_numpy(-wxyz)[None])[0].numpy()
        np.testing.assert_allclose(flipped, c2w[:3, :3], atol=1e-9)
    half_turn = np.diag([1.0, -1.0, -1.0, 1.0])  # 180 degrees about x: w = 0
    np.testing.assert_allclose(pose_to_c2w(*c2w_to_pose(half_turn)), half_turn, atol=1e-9)


def test_frame_size_and_intrinsics() -> None:
    assert frame_size(400, 2.0) == (400, 200)
    assert frame_size(400, 0.5) == (200, 400)
    assert frame_size(100, 1.0) == (100, 100)
    camera = browser_camera((0, 0, 0), (1, 0, 0, 0), fov=np.pi / 2, aspect=4 / 3, long_side=200)
    assert (camera.width, camera.height) == (200, 150)
    assert float(camera.fy[0]) == pytest.approx(75.0) and float(camera.fx[0]) == pytest.approx(75)
    assert (float(camera.cx[0]), float(camera.cy[0])) == (100.0, 75.0)


def test_adaptive_size() -> None:
    assert adaptive_size(512, moving=False, last_frame_seconds=3.0, target_seconds=0.1) == 512
    # 0.4 s at 400 px: a quarter of the pixels takes 0.1 s.
    assert adaptive_size(512, True, 0.4, 0.1, last_size=400) == 200
    assert adaptive_size(512, True, 0.01, 0.1, last_size=400) == 512  # fast: full size
    assert adaptive_size(512, True, 100.0, 0.1, last_size=512) == 32  # slow: the floor
    assert adaptive_size(512, True, None, 0.1) == 128  # not timed yet
    assert adaptive_size(16, True, 100.0, 0.1) == 16  # the floor never exceeds the maximum


def test_box_edges() -> None:
    edges = box_edges((-1, -2, -3, 1, 2, 3))
    assert edges.shape == (12, 2, 3)
    lengths = sorted(np.linalg.norm(edges[:, 1] - edges[:, 0], axis=1).round(6))
    assert lengths == [2.0] * 4 + [4.0] * 4 + [6.0] * 4


@pytest.fixture
def trained(tiny_config, blocks_scene, tmp_path):
    """A tiny SlimmeRF run, 100 steps on blocks (the blocks show; ranks 1 .. 4), and a training
    camera's pose as the browser would send it."""
    config = tiny_config("slimmerf", max_iterations=100, checkpoint_every=0)
    trainer = Trainer(config, tmp_path / "run", blocks_scene)
    trainer.train()
    pose = c2w_to_pose(blocks_scene.train.cameras.c2w[0].double().numpy())
    return trainer.model, pose


def test_each_mode_renders_the_requested_size(trained) -> None:
    model, pose = trained
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    renderer = ViewerRenderer(model, depth_range=(2.0, 6.0))
    for width, height in [(32, 24), (20, 40), (48, 48)]:
        camera = browser_camera(*pose, fov=0.7, aspect=width / height, long_side=max(width, height))
        images = {}
        for mode in MODES:
            images[mode] = renderer.render(camera, mode)
            assert images[mode].shape == (height, width, 3) and images[mode].dtype == np.uint8
            assert renderer.last_seconds is not None and renderer.last_seconds > 0
        assert images["rgb"].std() > 10  # the blocks show
        assert not np.array_equal(images["rgb"], images["depth"])
        grey = images["accumulation"]
        assert np.array_equal(grey[..., 0], grey[..., 1]) and grey.max() > grey.min() + 30
    assert model.training  # train mode restored; nothing changed
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    with pytest.raises(ValueError, match="unknown render mode"):
        renderer.render(camera, "normals")


def test_controls_apply_through_render_with(trained) -> None:
    model, pose = trained
    (control,) = model.render_controls()
    assert control.name == "rank" and (control.minimum, control.maximum) == (1, 4)
    trained_ranks = model.ranks.tolist()
    seen = []
    render_with = model.render_with

    def spy(values):
        seen.append(dict(values))
        return render_with(values)

    model.render_with = spy
    renderer = ViewerRenderer(model, depth_range=(2.0, 6.0))
    camera = browser_camera(*pose, fov=0.7, aspect=1.0, long_side=32)
    full = renderer.render(camera, "rgb", {"rank": 4})
    low = renderer.render(camera, "rgb", {"rank": 1})
    assert seen == [{"rank": 4}, {"rank": 1}]
    assert np.abs(full.astype(int) - low).max() > 10  # the rank reached the render
    assert model.ranks.tolist() == trained_ranks  # and was restored after it
    assert [c.name for c in renderer.controls()] == ["rank"]
    with pytest.raises(ValueError, match="no render controls"):
        renderer.render(camera, "rgb", {"identity": 0})


def test_renders_wait_for_the_training_step() -> None:
    access = ModelAccess()
    events = []
    access.acquire_training()

    def render() -> None:
        with access.rendering():
            events.append("render")

    thread = threading.Thread(target=render)
    thread.start()
    time.sleep(0.2)
    events.append("step done")
    access.release_training()
    thread.join(timeout=5)
    assert events == ["step done", "render"]
    # A waiting render goes before the next step.
    with access.rendering():
        stepped = threading.Thread(target=lambda: (access.acquire_training(), events.append("s")))
        stepped.start()
        time.sleep(0.1)
        assert events[-1] == "render"
    stepped.join(timeout=5)
    assert events[-1] == "s"
    access.release_training()
    access.close()
    with pytest.raises(RuntimeError, match="stopped"), access.rendering():
        pass
