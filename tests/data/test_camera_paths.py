"""Camera paths: orbits around what the cameras look at, smooth keyframe interpolation, and
nerfstudio camera-path JSON files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from tensorfields.data.camera_paths import (
    interpolate_path,
    keyframe_frames,
    keyframe_order,
    look_at_centre,
    orbit_path,
    scene_up,
    spiral_path,
)
from tensorfields.data.cameras import Cameras
from tensorfields.data.errors import DataError
from tensorfields.data.nerfstudio_camera_path import (
    read_nerfstudio_camera_path,
    write_nerfstudio_camera_path,
)
from tensorfields.data.procedural import look_at_origin
from tensorfields.data.transforms import cameras_from_opengl

CENTRE = np.array([0.5, -0.2, 0.3])
RADIUS, HEIGHT = 3.0, 1.0


def ring_cameras(n: int = 12, heights: list[float] | None = None, size=(40, 30)) -> Cameras:
    """``n`` cameras evenly around a circle (counter-clockwise about world z) about CENTRE,
    looking at it; built with the dataset code's OpenGL look-at, not the code under test."""
    poses = []
    for k in range(n):
        angle = 2 * math.pi * k / n
        h = HEIGHT if heights is None else heights[k]
        pose = look_at_origin(np.array([RADIUS * math.cos(angle), RADIUS * math.sin(angle), h]))
        pose[:3, 3] += CENTRE
        poses.append(pose)
    width, height = size
    f = [35.0] * n
    return cameras_from_opengl(np.stack(poses), f, f, [width / 2] * n, [height / 2] * n, *size)


def assert_rotations(c2w: torch.Tensor) -> None:
    rotation = c2w[:, :3, :3].double()
    eye = torch.eye(3, dtype=torch.float64).expand_as(rotation)
    torch.testing.assert_close(rotation.transpose(1, 2) @ rotation, eye, atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(rotation), torch.ones(len(c2w)).double())


def test_centre_and_up_of_a_ring() -> None:
    cameras = ring_cameras()
    assert look_at_centre(cameras).numpy() == pytest.approx(CENTRE, abs=1e-5)
    assert scene_up(cameras).numpy() == pytest.approx([0, 0, 1], abs=1e-6)


def test_up_of_cameras_facing_one_way_is_their_up() -> None:
    """Forward-facing cameras (rights all parallel): up is their mean up, made perpendicular."""
    c2w = torch.eye(4).repeat(3, 1, 1)
    c2w[:, :3, 3] = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    c2w[1, :3, :3] = torch.tensor([[1.0, 0, 0], [0, 0.96, -0.28], [0, 0.28, 0.96]])  # tilted
    ones = torch.ones(3)
    up = scene_up(Cameras(c2w, ones, ones, ones, ones, 2, 2))
    assert up[0].item() == pytest.approx(0, abs=1e-6) and up[1].item() < -0.99


def test_orbit_of_cameras_on_a_circle_reproduces_the_circle() -> None:
    cameras = ring_cameras(12)
    orbit = orbit_path(cameras, 12)
    assert len(orbit) == 12 and (orbit.width, orbit.height) == (40, 30)
    torch.testing.assert_close(orbit.c2w, cameras.c2w, atol=1e-5, rtol=0)
    torch.testing.assert_close(orbit.fx, cameras.fx)


def test_orbit_looks_at_the_centre_at_the_mean_distance_and_elevation() -> None:
    heights = [0.5 + 0.1 * k for k in range(10)]  # elevations vary: the orbit takes their mean
    cameras = ring_cameras(10, heights)
    orbit = orbit_path(cameras, 37, width=64, height=48)
    assert len(orbit) == 37 and (orbit.width, orbit.height) == (64, 48)
    assert_rotations(orbit.c2w)
    centre = torch.as_tensor(CENTRE, dtype=torch.float32)
    to_centre = centre - orbit.c2w[:, :3, 3]
    forward = orbit.c2w[:, :3, 2]
    assert torch.linalg.cross(forward, to_centre).norm(dim=-1).max() < 1e-4
    assert ((forward * to_centre).sum(-1) > 0).all()  # in front, not behind
    distances = to_centre.norm(dim=-1)
    expected = sum(math.hypot(RADIUS, h) for h in heights) / len(heights)
    assert distances.numpy() == pytest.approx(expected, rel=2e-3)
    offsets = cameras.c2w[:, :3, 3].double() - torch.as_tensor(CENTRE)
    mean_elevation = torch.asin(offsets[:, 2] / offsets.norm(dim=-1)).mean()
    elevation = torch.asin(-to_centre[:, 2] / distances)
    assert elevation.numpy() == pytest.approx(float(mean_elevation), abs=1e-5)
    assert (orbit.c2w[:, 2, 1] < 0).all()  # image y (down) points down the world: upright
    torch.testing.assert_close(orbit.fy, torch.full((37,), 35.0 * 48 / 30))


def test_spiral_keeps_its_distance_and_swings_its_elevation() -> None:
    cameras = ring_cameras()
    spiral = spiral_path(cameras, 48, turns=2, swing_deg=10)
    assert len(spiral) == 48
    assert_rotations(spiral.c2w)
    offsets = spiral.c2w[:, :3, 3].double() - torch.as_tensor(CENTRE)
    distance = offsets.norm(dim=-1)
    assert distance.numpy() == pytest.approx(math.hypot(RADIUS, HEIGHT), rel=1e-5)
    elevation = torch.rad2deg(torch.asin(offsets[:, 2] / distance))
    mean = math.degrees(math.atan2(HEIGHT, RADIUS))
    assert float(elevation.min()) == pytest.approx(mean - 10, abs=1e-3)
    assert float(elevation.max()) == pytest.approx(mean + 10, abs=0.1)


def test_parallel_cameras_orbit_the_hint_on_their_axis() -> None:
    """One camera (a monocular video) or a forward-facing rig: no axes meet, so the centre is
    the point of the mean axis nearest to a hint (the scene box's centre), else an error."""
    c2w = torch.eye(4).repeat(3, 1, 1)
    c2w[:, 0, 3] = torch.tensor([-1.0, 0.0, 1.0])  # side by side, all looking down +z
    ones = torch.ones(3)
    cameras = Cameras(c2w, ones, ones, ones, ones, 2, 2)
    with pytest.raises(ValueError, match="parallel"):
        orbit_path(cameras, 10)
    centre = look_at_centre(cameras, hint=torch.tensor([0.3, 0.2, 5.0]))
    assert centre.tolist() == pytest.approx([0.0, 0.0, 5.0])
    orbit = orbit_path(cameras[0], 8, centre=centre)  # the single camera, on its own
    offsets = orbit.c2w[:, :3, 3] - centre
    assert offsets.norm(dim=-1).numpy() == pytest.approx(math.hypot(1, 5), rel=1e-5)
    assert offsets[:, 1].numpy() == pytest.approx(0, abs=1e-5)  # level: the camera's height
    torch.testing.assert_close(orbit.c2w[0, :3, 3], c2w[0, :3, 3], atol=1e-5, rtol=0)


def keyframes() -> Cameras:
    """Five cameras on a wavy arc, with different focal lengths."""
    cameras = ring_cameras(8, [0.2, 1.5, 0.4, 2.0, 0.8, 1.0, 0.3, 1.2])[
        torch.tensor([0, 1, 2, 3, 4])
    ]
    cameras.fx = cameras.fx * torch.tensor([1.0, 1.2, 0.9, 1.1, 1.0])
    return cameras


@pytest.mark.parametrize("n_frames", [5, 6, 17, 60, 201])
def test_interpolation_hits_every_keyframe_with_the_right_frame_count(n_frames: int) -> None:
    kf = keyframes()
    path = interpolate_path(kf, n_frames)
    hits = keyframe_frames(kf, n_frames)
    assert len(path) == n_frames
    assert hits[0] == 0 and hits[-1] == n_frames - 1 and len(hits) == len(kf)
    assert all(b > a for a, b in zip(hits, hits[1:], strict=False))
    assert torch.equal(path.c2w[hits], kf.c2w)
    for name in ("fx", "fy", "cx", "cy"):
        assert torch.equal(getattr(path, name)[hits], getattr(kf, name))
    assert_rotations(path.c2w)


def test_interpolation_is_smooth() -> None:
    path = interpolate_path(keyframes(), 400)
    positions = path.c2w[:, :3, 3].double()
    steps = (positions[1:] - positions[:-1]).norm(dim=-1)
    assert steps.max() < 1.25 * steps.mean()  # even speed: no jumps, no stops
    bend = (positions[2:] - 2 * positions[1:-1] + positions[:-2]).norm(dim=-1)
    assert bend.max() < 0.2 * steps.mean()  # the direction of travel turns gradually
    rotation = path.c2w[:, :3, :3].double()
    relative = rotation[1:].transpose(1, 2) @ rotation[:-1]
    angle = torch.acos(((relative.diagonal(dim1=1, dim2=2).sum(-1) - 1) / 2).clamp(-1, 1))
    assert angle.max() < math.radians(2.0)  # 400 frames turn ~180 degrees
    assert (path.fx[1:] - path.fx[:-1]).abs().max() < 0.5


def test_two_keyframes_give_a_straight_even_line() -> None:
    path = interpolate_path(keyframes()[torch.tensor([0, 3])], 11, width=20, height=15)
    positions = path.c2w[:, :3, 3].double()
    expected = torch.linspace(0, 1, 11, dtype=torch.float64)[:, None]
    line = positions[0] + expected * (positions[-1] - positions[0])
    torch.testing.assert_close(positions, line, atol=1e-5, rtol=0)
    assert (path.width, path.height) == (20, 15)


def test_turning_on_the_spot_turns_evenly() -> None:
    """Keyframes at one position (a pan): no division by a zero distance, an even turn."""
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[1, :3, :3] = torch.tensor([[0.0, 0, 1], [0, 1, 0], [-1, 0, 0]])  # 90 degrees about y
    ones = torch.ones(2)
    path = interpolate_path(Cameras(c2w, ones, ones, ones, ones, 2, 2), 10)
    assert torch.isfinite(path.c2w).all() and (path.c2w[:, :3, 3] == 0).all()
    yaw = torch.rad2deg(torch.atan2(path.c2w[:, 0, 2], path.c2w[:, 2, 2]))
    assert yaw.numpy() == pytest.approx(np.linspace(0, 90, 10), abs=1e-3)


def test_too_few_frames_for_the_keyframes() -> None:
    with pytest.raises(ValueError, match="4 frames cannot pass through 5 keyframes"):
        interpolate_path(keyframes(), 4)


def test_keyframe_order_goes_around_the_ring() -> None:
    cameras = ring_cameras(12)
    shuffled = torch.tensor([5, 0, 9, 3, 11, 7, 1, 10, 2, 8, 4, 6])
    order = torch.tensor(keyframe_order(cameras[shuffled]))
    ring = shuffled[order]
    steps = (ring.roll(-1) - ring) % 12
    assert (steps == steps[0]).all() and int(steps[0]) in (1, 11)


def test_nerfstudio_camera_path_round_trip(tmp_path: Path) -> None:
    cameras = orbit_path(ring_cameras(), 9, width=64, height=48)
    path = tmp_path / "paths" / "orbit.json"
    write_nerfstudio_camera_path(path, cameras, fps=12.0)
    meta = json.loads(path.read_text())
    assert meta["render_width"] == 64 and meta["render_height"] == 48
    assert len(meta["camera_path"]) == 9 and len(meta["camera_path"][0]["camera_to_world"]) == 16
    back, fps = read_nerfstudio_camera_path(path)
    assert fps == 12.0 and (back.width, back.height) == (64, 48)
    torch.testing.assert_close(back.c2w, cameras.c2w, atol=1e-6, rtol=0)
    for name in ("fx", "fy", "cx", "cy"):
        torch.testing.assert_close(getattr(back, name), getattr(cameras, name))


def test_nerfstudio_convention(tmp_path: Path) -> None:
    """OpenGL pose, vertical fov in degrees -> OpenCV pose, pixels; fps from seconds."""
    c2w_gl = np.eye(4)
    c2w_gl[:3, 3] = (1.0, 2.0, 4.0)
    entry = {"camera_to_world": c2w_gl.reshape(-1).tolist(), "fov": 60.0, "aspect": 2.0}
    meta = {"render_width": 200, "render_height": 100, "seconds": 2.0, "camera_path": [entry] * 3}
    path = tmp_path / "path.json"
    path.write_text(json.dumps(meta))
    cameras, fps = read_nerfstudio_camera_path(path)
    assert fps == 1.5 and len(cameras) == 3
    expected = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
    expected[:3, 3] = torch.tensor([1.0, 2.0, 4.0])
    torch.testing.assert_close(cameras.c2w[0], expected)
    focal = 50.0 / math.tan(math.radians(30.0))
    assert cameras.fx[0].item() == pytest.approx(focal) and cameras.fy[0].item() == pytest.approx(
        focal
    )
    assert (cameras.cx[0].item(), cameras.cy[0].item()) == (100.0, 50.0)


GOOD_ENTRY = {"camera_to_world": np.eye(4).reshape(-1).tolist(), "fov": 50.0}
SIZE = {"render_width": 4, "render_height": 4}
SHORT_POSE = {**GOOD_ENTRY, "camera_to_world": [1.0] * 15}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"render_width": 4,', "malformed JSON"),
        (json.dumps({"render_width": 4, "render_height": 4}), "missing key 'camera_path'"),
        (json.dumps({"render_height": 4, "camera_path": []}), "missing key 'render_width'"),
        (json.dumps({"render_width": 4, "render_height": 4, "camera_path": []}), "non-empty list"),
        (
            json.dumps({**SIZE, "camera_path": [GOOD_ENTRY, SHORT_POSE]}),
            r"camera_path\[1\]: camera_to_world must be 16 numbers",
        ),
        (
            json.dumps({"render_width": 4, "render_height": 4,
                        "camera_path": [{"camera_to_world": GOOD_ENTRY["camera_to_world"]}]}),
            r"camera_path\[0\]: missing key 'fov'",
        ),
        (
            json.dumps({"render_width": 4.5, "render_height": 4, "camera_path": [GOOD_ENTRY]}),
            "whole number",
        ),
        (
            json.dumps({"render_width": 4, "render_height": 4, "camera_type": "fisheye",
                        "camera_path": [GOOD_ENTRY]}),
            "camera_type 'fisheye' is not supported",
        ),
    ],
)  # fmt: skip
def test_bad_camera_path_files_name_the_file_and_problem(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "bad_path.json"
    path.write_text(content)
    with pytest.raises(DataError, match=problem) as info:
        read_nerfstudio_camera_path(path)
    assert info.value.path == path and str(path) in str(info.value)
