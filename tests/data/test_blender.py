"""Blender-layout dataparser: good data parses right, each bad input names file and problem."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tensorfields.data.blender import load_blender_split
from tensorfields.data.errors import DataError
from tensorfields.data.loader import load_split


def edit_json(root: Path, change) -> None:
    path = root / "transforms_train.json"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def test_parses_shapes_focal_and_poses(blender_scene: Path, files) -> None:
    split = load_blender_split(blender_scene, "train")
    assert split.images.shape == (3, 6, 8, 3) and split.images.dtype == torch.float32
    assert split.names == ["r_0", "r_1", "r_2"]
    cams = split.cameras
    assert (cams.width, cams.height) == (8, 6)
    torch.testing.assert_close(cams.fx, torch.full((3,), files.expected_focal(8)))
    torch.testing.assert_close(cams.fy, cams.fx)
    torch.testing.assert_close(cams.cx, torch.full((3,), 4.0))
    torch.testing.assert_close(cams.cy, torch.full((3,), 3.0))
    # OpenGL camera looking down world -z becomes an OpenCV camera whose +z is world -z.
    torch.testing.assert_close(cams.c2w[1, :3, 2], torch.tensor([0.0, 0.0, -1.0]))
    torch.testing.assert_close(cams.c2w[1, :3, 1], torch.tensor([0.0, -1.0, 0.0]))
    torch.testing.assert_close(cams.c2w[1, :3, 3], torch.tensor([1.0, 0.0, 4.0]))


def test_composites_on_background(blender_scene: Path) -> None:
    images = load_blender_split(blender_scene, "train", background=(0.0, 0.0, 1.0)).images
    torch.testing.assert_close(images[0, 0, 0], torch.tensor([1.0, 0.0, 0.0]))  # opaque red
    torch.testing.assert_close(images[0, 0, 1], torch.tensor([0.0, 0.0, 1.0]))  # transparent
    torch.testing.assert_close(images[0, 0, 2], torch.tensor([0.0, 0.2, 0.8]))  # 20% green
    white = load_blender_split(blender_scene, "train").images
    torch.testing.assert_close(white[0, 0, 1], torch.ones(3))


def test_rgb_images_and_extensions_are_accepted(blender_scene: Path, files) -> None:
    pixels = files.rgba_image()[..., :3]
    files.write_png(blender_scene / "train" / "r_1.png", pixels)
    edit_json(blender_scene, lambda m: m["frames"][1].update(file_path="./train/r_1.png"))
    images = load_blender_split(blender_scene, "train", background=(0.0, 0.0, 0.0)).images
    torch.testing.assert_close(images[1], torch.from_numpy(pixels / np.float32(255)))


def test_downscale_shrinks_images_and_focal(blender_scene: Path, files) -> None:
    block = np.zeros((6, 8, 4), dtype=np.uint8)
    block[..., 3] = 255
    block[:2, :2, 0] = 200  # one 2x2 block of the output's top-left pixel
    files.write_png(blender_scene / "train" / "r_0.png", block)
    split = load_blender_split(blender_scene, "train", downscale=2)
    assert split.images.shape == (3, 3, 4, 3)
    assert split.cameras.width == 4 and split.cameras.height == 3
    torch.testing.assert_close(split.cameras.fx[0], torch.tensor(files.expected_focal(4)))
    torch.testing.assert_close(split.cameras.cx[0], torch.tensor(2.0))
    assert split.images[0, 0, 0, 0].item() == pytest.approx(200 / 255, abs=1e-6)
    assert split.images[0, 0, 1, 0].item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("downscale", [0, -2, float("nan")])
def test_bad_downscale_is_rejected(blender_scene: Path, downscale: float) -> None:
    with pytest.raises(ValueError, match="downscale"):
        load_blender_split(blender_scene, "train", downscale=downscale)


def set_key(key, value):
    return lambda m: m.update({key: value})


def set_frame(key, value, index=1):
    return lambda m: m["frames"][index].update({key: value})


def drop(key, index=None):
    return lambda m: (m if index is None else m["frames"][index]).pop(key)


BAD_JSON = {
    "missing camera_angle_x": (drop("camera_angle_x"), "missing key 'camera_angle_x'"),
    "camera_angle_x not a number": (set_key("camera_angle_x", "wide"), "camera_angle_x"),
    "missing frames": (drop("frames"), "missing key 'frames'"),
    "empty frames": (set_key("frames", []), "split has no frames"),
    "missing file_path": (drop("file_path", 1), "frame 1: missing key 'file_path'"),
    "missing transform_matrix": (
        drop("transform_matrix", 1),
        "frame 1: missing key 'transform_matrix'",
    ),
    "3x4 transform": (
        set_frame("transform_matrix", [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 4]]),
        "must be 4x4, got shape (3, 4)",
    ),
    "non-finite transform": (
        set_frame("transform_matrix", [[float("nan")] * 4] * 4),
        "non-finite",
    ),
    "ragged transform": (set_frame("transform_matrix", [[1, 2], [3]]), "transform_matrix"),
}


@pytest.mark.parametrize("case", list(BAD_JSON))
def test_bad_json_content_raises_data_error(blender_scene: Path, case: str) -> None:
    change, problem = BAD_JSON[case]
    edit_json(blender_scene, change)
    with pytest.raises(DataError) as info:
        load_blender_split(blender_scene, "train")
    assert "transforms_train.json" in str(info.value)
    assert problem in str(info.value)


def test_missing_json(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"transforms_val\.json: file not found"):
        load_blender_split(tmp_path, "val")


def test_malformed_json_gives_line_and_column(blender_scene: Path) -> None:
    (blender_scene / "transforms_train.json").write_text('{\n  "camera_angle_x": 0.7,,\n}')
    with pytest.raises(DataError, match=r"transforms_train\.json: malformed JSON at line 2"):
        load_blender_split(blender_scene, "train")


def test_missing_image(blender_scene: Path) -> None:
    os.remove(blender_scene / "train" / "r_2.png")
    with pytest.raises(DataError, match=r"r_2.*image file not found"):
        load_blender_split(blender_scene, "train")


def test_corrupt_image(blender_scene: Path) -> None:
    (blender_scene / "train" / "r_1.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"r_1\.png: cannot decode image"):
        load_blender_split(blender_scene, "train")


def test_mismatched_image_sizes_name_both_sizes(blender_scene: Path, files) -> None:
    files.write_png(blender_scene / "train" / "r_1.png", files.rgba_image(width=10))
    with pytest.raises(DataError) as info:
        load_blender_split(blender_scene, "train")
    message = str(info.value)
    assert "r_1.png" in message and "r_0.png" in message
    assert "10x6" in message and "8x6" in message


def test_loader_detects_blender(blender_scene: Path) -> None:
    assert len(load_split(blender_scene, "train")) == 3


def test_loader_without_transforms_names_folder_and_files(blender_scene: Path) -> None:
    with pytest.raises(DataError) as info:
        load_split(blender_scene, "val")
    message = str(info.value)
    assert str(blender_scene) in message
    assert "transforms_val.json" in message and "transforms.json" in message
    assert "transforms_train.json" in message  # what it found instead
    with pytest.raises(DataError, match="does not exist"):
        load_split(blender_scene / "nope", "train")


def _lego_root() -> Path | None:
    base = os.environ.get("TF_DATA_DIR")
    root = Path(base) / "nerf_synthetic" / "lego" if base else None
    return root if root is not None and (root / "transforms_val.json").is_file() else None


@pytest.mark.lego
@pytest.mark.skipif(
    _lego_root() is None,
    reason="lego data not found: set TF_DATA_DIR to a folder holding nerf_synthetic/lego",
)
def test_real_lego_val_downscaled() -> None:
    split = load_blender_split(_lego_root(), "val", downscale=8)
    assert split.images.shape == (100, 50, 50, 3)
    focal = 0.5 * 50 / math.tan(0.5 * 0.6911112)
    torch.testing.assert_close(split.cameras.fx, torch.full((100,), focal), rtol=1e-5, atol=1e-4)
    assert split.images.min() >= 0.0 and split.images.max() <= 1.0
