"""Rendering camera paths to mp4 and PNG frames, and ``tf-render`` on a two-step run."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from torch import nn

from tensorfields.cli import render as render_cli
from tensorfields.cli import train as train_cli
from tensorfields.cli.errors import run_cli
from tensorfields.data.cameras import Cameras
from tensorfields.data.humans.generate import make_humans_dataset
from tensorfields.data.nerfstudio_camera_path import read_nerfstudio_camera_path
from tensorfields.models.base import Model, RenderControl, RenderOutput
from tensorfields.pipeline import video
from tensorfields.pipeline.video import VideoDependencyError, even_size, render_video


class GreyModel(Model):
    """Frame i is a flat grey of level 40 * i (rgb) and half empty (depth): easy to check."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.level = 0
        self.seen_levels: list[int] = []

    def render_controls(self) -> list[RenderControl]:
        return [RenderControl("level", "level", 0, 5, self.level)]

    @contextmanager
    def render_with(self, values: dict[str, int]) -> Iterator[None]:
        with super().render_with(values):
            saved, self.level = self.level, values.get("level", self.level)
            try:
                yield
            finally:
                self.level = saved

    def render_camera(self, cameras: Cameras, index: int, chunk: int = 8192) -> RenderOutput:
        self.seen_levels.append(self.level)
        h, w = cameras.height, cameras.width
        rgb = torch.full((h, w, 3), 40 * (index + self.level) / 255.0)
        accumulation = torch.ones(h, w)
        accumulation[:, : w // 2] = 0.0
        return RenderOutput(rgb, torch.full((h, w), 3.0), accumulation)


def path(n: int, width: int, height: int) -> Cameras:
    c2w = torch.eye(4).repeat(n, 1, 1)
    c2w[:, 0, 3] = torch.arange(n, dtype=torch.float32)
    ones = torch.ones(n)
    return Cameras(c2w, ones * 20, ones * 20, ones * width / 2, ones * height / 2, width, height)


def read_mp4(file: Path) -> np.ndarray:
    return iio.imread(file, plugin="FFMPEG", index=None)


def test_mp4_has_the_frames_and_size(tmp_path: Path) -> None:
    result = render_video(GreyModel(), path(6, 32, 24), tmp_path, fps=6.0, show_progress=False)
    assert result.paths == [tmp_path / "rgb.mp4", tmp_path / "depth.mp4"]
    assert result.frames == 6 and result.frames_per_second > 0
    rgb = read_mp4(tmp_path / "rgb.mp4")
    assert rgb.shape == (6, 24, 32, 3)
    levels = rgb[:, 8:16, 8:24].reshape(6, -1).mean(-1)
    assert levels == pytest.approx([40 * i for i in range(6)], abs=4)  # lossy, but close
    depth = read_mp4(tmp_path / "depth.mp4")
    assert depth.shape == (6, 24, 32, 3)
    assert depth[:, 12, 4].min() > 240  # empty pixels show the white background
    assert depth[:, 12, 28].max() < 200  # hit pixels are coloured


def test_png_frames_and_controls(tmp_path: Path) -> None:
    model = GreyModel()
    result = render_video(
        model, path(3, 25, 15), tmp_path, fps=2.0, outputs=["rgb"], formats=["png", "mp4"],
        controls={"level": 2}, show_progress=False,
    )  # fmt: skip
    assert result.paths == [tmp_path / "rgb", tmp_path / "rgb.mp4"]
    frames = sorted((tmp_path / "rgb").glob("*.png"))
    assert [f.name for f in frames] == ["00000.png", "00001.png", "00002.png"]
    for i, frame in enumerate(frames):
        image = iio.imread(frame)
        assert image.shape == (15, 25, 3) and (image == 40 * (i + 2)).all()
    assert read_mp4(tmp_path / "rgb.mp4").shape == (3, 16, 26, 3)  # odd sizes padded to even
    assert model.seen_levels == [2, 2, 2] and model.level == 0  # rendered inside render_with
    assert not (tmp_path / "depth").exists()
    with pytest.raises(ValueError, match="no render controls"):
        render_video(model, path(1, 4, 4), tmp_path, 1.0, controls={"rank": 1})


def test_even_size_pads_by_repeating_the_edge() -> None:
    frame = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    padded = even_size(frame)
    assert padded.shape == (4, 6, 3)
    assert (padded[:3, :5] == frame).all() and (padded[3, :5] == frame[2]).all()
    assert even_size(padded) is not None and even_size(padded).shape == (4, 6, 3)


def test_missing_ffmpeg_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        video.importlib.util,
        "find_spec",
        lambda name: None if name == "imageio_ffmpeg" else real(name),
    )
    with pytest.raises(VideoDependencyError, match="pip install imageio-ffmpeg"):
        render_video(GreyModel(), path(2, 8, 8), tmp_path / "out", 2.0)
    assert not (tmp_path / "out").exists()  # failed before rendering anything
    render_video(GreyModel(), path(2, 8, 8), tmp_path / "png", 2.0, formats=["png"])


TINY_RUN = [
    "tensorf-vm", "--scene", "blocks", "--downscale", "4",
    "--trainer.max-iterations", "2", "--trainer.batch-size", "256",
    "--trainer.eval-every", "0", "--trainer.final-eval-every", "0", "--trainer.device", "cpu",
    "--model.voxels-init", "4096",
]  # fmt: skip


def test_tf_render_of_a_trained_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    train_cli.main([*TINY_RUN, "--output-dir", str(tmp_path / "outputs")])
    (run_dir,) = (tmp_path / "outputs" / "blocks" / "tensorf-vm").iterdir()
    saved = tmp_path / "orbit.json"
    fast = ["--seconds", "0.5", "--fps", "4", "--device", "cpu"]

    # The default: an orbit at the training size (blocks at --downscale 4: 25x25, padded).
    render_cli.main([str(run_dir), *fast, "--save-path", str(saved)])
    out = run_dir / "renders" / "orbit"
    assert read_mp4(out / "rgb.mp4").shape == (2, 26, 26, 3)
    assert read_mp4(out / "depth.mp4").shape == (2, 26, 26, 3)
    cameras, fps = read_nerfstudio_camera_path(saved)
    assert len(cameras) == 2 and fps == 4.0 and (cameras.width, cameras.height) == (25, 25)
    assert "2 frames" in capsys.readouterr().out

    # The saved path renders again, at another size; spiral and interpolate as PNG frames.
    render_cli.main([str(run_dir), "--path", str(saved), "--width", "32", "--outputs", "rgb",
                     "--output", str(tmp_path / "again"), "--device", "cpu"])  # fmt: skip
    assert read_mp4(tmp_path / "again" / "rgb.mp4").shape == (2, 32, 32, 3)
    for name in ("spiral", "interpolate"):
        render_cli.main([str(run_dir), "--path", name, *fast, "--format", "png",
                         "--width", "20", "--height", "16"])  # fmt: skip
        frames = sorted((run_dir / "renders" / name / "depth").glob("*.png"))
        assert len(frames) == 2 and iio.imread(frames[0]).shape == (16, 20, 3)

    with pytest.raises(ValueError, match="offers no render controls"):
        render_cli.main([str(run_dir), *fast, "--control", "pose=1"])


def test_tf_render_of_a_monocular_migs_run_with_controls(tmp_path: Path) -> None:
    """One fixed camera (no axes meet): the orbit circles the scene box's centre on its axis;
    --control picks the identity and pose, checked against the model's render controls."""
    data = make_humans_dataset(
        tmp_path / "humans",
        n_identities=2,
        resolution=32,
        n_train_frames=3,
        n_test_frames=1,
        n_ood_frames=1,
        n_val_frames=1,
    )
    train_cli.main([
        "migs", "--preset", "cpu", "--scene", "humans", "--data", str(data),
        "--model.n-gaussians", "200", "--model.rank", "4", "--model.feature-dim", "4",
        "--model.network-width", "16", "--trainer.max-iterations", "2",
        "--trainer.eval-every", "0", "--trainer.final-eval-every", "0",
        "--trainer.device", "cpu", "--output-dir", str(tmp_path / "outputs"),
    ])  # fmt: skip
    (run_dir,) = (tmp_path / "outputs" / "humans" / "migs").iterdir()
    args = [str(run_dir), "--seconds", "1", "--fps", "3", "--device", "cpu", "--format", "png"]
    render_cli.main([*args, "--control", "identity=1", "--control", "pose=2"])
    frames = sorted((run_dir / "renders" / "orbit" / "rgb").glob("*.png"))
    assert len(frames) == 3 and iio.imread(frames[0]).shape == (32, 32, 3)
    with pytest.raises(ValueError, match=r"pose=99: out of 0\.\.\d+$"):
        render_cli.main([*args, "--control", "pose=99"])
    with pytest.raises(ValueError, match=r"offers identity \(0\.\.1\), pose"):
        render_cli.main([*args, "--control", "rank=1"])


def test_tf_render_of_a_non_run_dir_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli(render_cli.main, [str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "not a tf-train run directory: missing config.yaml" in err and "Traceback" not in err
    with pytest.raises(SystemExit):
        run_cli(render_cli.main, [str(tmp_path / "nowhere"), "--path", "circle"])
    assert "no such run directory" in capsys.readouterr().err
