"""nerfstudio dataparser: intrinsics, splits, downscale, and errors naming file and problem."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tensorfields.data.errors import DataError
from tensorfields.data.loader import load_split
from tensorfields.data.nerfstudio import load_nerfstudio_split


def edit_json(root: Path, change) -> None:
    path = root / "transforms.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def frame_index(meta: dict, name: str) -> int:
    return next(i for i, f in enumerate(meta["frames"]) if name in f["file_path"])


def test_default_split_every_8th_frame(nerfstudio_scene: Path) -> None:
    train = load_nerfstudio_split(nerfstudio_scene, "train")
    val = load_nerfstudio_split(nerfstudio_scene, "val")
    test = load_nerfstudio_split(nerfstudio_scene, "test")
    # Frames are sorted by file_path although the JSON lists them in reverse.
    assert val.names == ["img_00", "img_08"] and test.names == val.names
    assert train.names == [f"img_{i:02d}" for i in (1, 2, 3, 4, 5, 6, 7, 9)]
    torch.testing.assert_close(val.images[1, 0, 0], torch.full((3,), 80 / 255))
    torch.testing.assert_close(val.cameras.c2w[1, :3, 3], torch.tensor([0.0, 8.0, 4.0]))


def test_intrinsics_with_per_frame_override(nerfstudio_scene: Path) -> None:
    split = load_nerfstudio_split(nerfstudio_scene, "train")
    cams = split.cameras
    assert (cams.width, cams.height) == (8, 6) and split.images.shape == (8, 6, 8, 3)
    expected_fx = torch.tensor([10.0, 10.0, 20.0, 10.0, 10.0, 10.0, 10.0, 10.0])
    torch.testing.assert_close(cams.fx, expected_fx)  # img_03 overrides fl_x
    torch.testing.assert_close(cams.fy, torch.full((8,), 11.0))
    torch.testing.assert_close(cams.cx, torch.full((8,), 4.0))
    torch.testing.assert_close(cams.cy, torch.full((8,), 3.0))
    torch.testing.assert_close(cams.c2w[0, :3, 2], torch.tensor([0.0, 0.0, -1.0]))  # OpenCV


def test_downscale_scales_intrinsics(nerfstudio_scene: Path) -> None:
    split = load_nerfstudio_split(nerfstudio_scene, "val", downscale=2)
    cams = split.cameras
    assert split.images.shape == (2, 3, 4, 3) and (cams.width, cams.height) == (4, 3)
    torch.testing.assert_close(cams.fx, torch.full((2,), 5.0))
    torch.testing.assert_close(cams.fy, torch.full((2,), 5.5))
    torch.testing.assert_close(cams.cx, torch.full((2,), 2.0))
    torch.testing.assert_close(cams.cy, torch.full((2,), 1.5))


def test_explicit_split_lists(nerfstudio_scene: Path) -> None:
    def lists(meta: dict) -> None:
        meta["train_filenames"] = [f"images/img_{i:02d}.png" for i in range(7)]
        meta["val_filenames"] = ["images/img_07.png", "./images/img_09"]
        meta["test_filenames"] = ["images/img_08.png"]

    edit_json(nerfstudio_scene, lists)
    assert load_nerfstudio_split(nerfstudio_scene, "val").names == ["img_07", "img_09"]
    assert load_nerfstudio_split(nerfstudio_scene, "test").names == ["img_08"]
    assert len(load_nerfstudio_split(nerfstudio_scene, "train")) == 7


def test_rgba_images_are_composited(nerfstudio_scene: Path, files) -> None:
    rgba = np.zeros((6, 8, 4), dtype=np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)
    files.write_png(nerfstudio_scene / "images" / "img_00.png", rgba)
    images = load_nerfstudio_split(nerfstudio_scene, "val", background=(0.0, 1.0, 0.0)).images
    torch.testing.assert_close(images[0, 0, 0], torch.tensor([1.0, 0.0, 0.0]))
    torch.testing.assert_close(images[0, 1, 1], torch.tensor([0.0, 1.0, 0.0]))


def test_loader_detects_nerfstudio(nerfstudio_scene: Path) -> None:
    assert len(load_split(nerfstudio_scene, "test")) == 2


def test_unknown_split_is_rejected(nerfstudio_scene: Path) -> None:
    with pytest.raises(ValueError, match="unknown split 'holdout'"):
        load_nerfstudio_split(nerfstudio_scene, "holdout")


def set_frame(name, key, value):
    return lambda m: m["frames"][frame_index(m, name)].update({key: value})


BAD_JSON = {
    "missing fl_y": (lambda m: m.pop("fl_y"), "missing key 'fl_y'"),
    "negative focal": (lambda m: m.update(fl_x=-3), "fl_x must be > 0"),
    "missing frames": (lambda m: m.pop("frames"), "missing key 'frames'"),
    "empty frames": (lambda m: m.update(frames=[]), "split has no frames"),
    "missing file_path": (
        lambda m: m["frames"][0].pop("file_path"),
        "frame 0: missing key 'file_path'",
    ),
    "missing transform_matrix": (
        lambda m: m["frames"][frame_index(m, "img_08")].pop("transform_matrix"),
        "missing key 'transform_matrix'",
    ),
    "2x2 transform": (set_frame("img_08", "transform_matrix", [[1, 0], [0, 1]]), "must be 4x4"),
    "inf transform": (
        set_frame("img_00", "transform_matrix", [[float("inf")] * 4] * 4),
        "non-finite",
    ),
    "fisheye": (lambda m: m.update(camera_model="OPENCV_FISHEYE"), "not supported"),
    "missing val list": (
        lambda m: m.update(train_filenames=["images/img_01.png"]),
        "missing key 'val_filenames'",
    ),
    "unknown listed file": (
        lambda m: m.update(val_filenames=["images/nope.png"]),
        "'images/nope.png', which is not a frame's file_path",
    ),
    "declared size differs": (lambda m: m.update(w=9), "differs from w=9, h=6"),
}


@pytest.mark.parametrize("case", list(BAD_JSON))
def test_bad_json_content_raises_data_error(nerfstudio_scene: Path, case: str) -> None:
    change, problem = BAD_JSON[case]
    edit_json(nerfstudio_scene, change)
    with pytest.raises(DataError) as info:
        load_nerfstudio_split(nerfstudio_scene, "val")
    message = str(info.value)
    assert "transforms.json" in message and problem in message


def test_missing_json(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"transforms\.json: file not found"):
        load_nerfstudio_split(tmp_path, "train")


def test_malformed_json_gives_line_and_column(nerfstudio_scene: Path) -> None:
    (nerfstudio_scene / "transforms.json").write_text('{"w": 8,\n "frames": [}')
    with pytest.raises(DataError, match=r"transforms\.json: malformed JSON at line 2, column"):
        load_nerfstudio_split(nerfstudio_scene, "train")


def test_missing_image(nerfstudio_scene: Path) -> None:
    os.remove(nerfstudio_scene / "images" / "img_08.png")
    with pytest.raises(DataError, match=r"img_08\.png: image file not found"):
        load_nerfstudio_split(nerfstudio_scene, "val")


def test_mismatched_image_sizes_name_both_sizes(nerfstudio_scene: Path, files) -> None:
    files.write_png(nerfstudio_scene / "images" / "img_08.png", np.zeros((7, 8, 3), np.uint8))
    edit_json(nerfstudio_scene, set_frame("img_08", "h", 7))
    with pytest.raises(DataError) as info:
        load_nerfstudio_split(nerfstudio_scene, "val")
    message = str(info.value)
    assert "img_08.png" in message and "img_00.png" in message
    assert "8x7" in message and "8x6" in message


def test_too_few_frames_for_train(nerfstudio_scene: Path) -> None:
    edit_json(nerfstudio_scene, lambda m: m.update(frames=m["frames"][-1:]))  # img_00 only
    with pytest.raises(DataError, match="split has no frames"):
        load_nerfstudio_split(nerfstudio_scene, "train")


def test_distortion_is_ignored_with_a_warning(nerfstudio_scene: Path) -> None:
    edit_json(nerfstudio_scene, lambda m: m.update(k1=0.1, p1=0.0))
    with pytest.warns(UserWarning, match="lens distortion"):
        load_nerfstudio_split(nerfstudio_scene, "val")
