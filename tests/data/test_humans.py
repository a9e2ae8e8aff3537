"""The procedural humans dataset: identities, motions, the analytic renderer, files, reader, CLI."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tensorfields.cli.make_dataset import entrypoint
from tensorfields.core.skinning import axis_angle_to_matrix, forward_kinematics
from tensorfields.data import locate
from tensorfields.data.errors import DataError
from tensorfields.data.frames import FrameSplit
from tensorfields.data.humans import generate
from tensorfields.data.humans.characters import (
    PATTERNS,
    Capsule,
    Ellipsoid,
    body_primitives,
    sample_identities,
)
from tensorfields.data.humans.generate import (
    HumansParams,
    ensure_humans_dataset,
    fixed_camera,
    make_humans_dataset,
)
from tensorfields.data.humans.layout import load_humans_split
from tensorfields.data.humans.motions import (
    MotionStyle,
    matrix_to_axis_angle,
    ood_poses,
    split_sequence,
    walking_turn,
)
from tensorfields.data.humans.raycast import (
    cast_rays,
    intersect_capsule,
    intersect_ellipsoid,
    pixel_rays,
    posed_bounds,
    render_rgba,
)
from tensorfields.data.humans.skeleton import LEAVES, PARENTS, humans_skeleton, joint, rest_joints
from tensorfields.data.loader import detect_format, load_split
from tensorfields.data.scenes import load_preset

TINY = {
    "n_identities": 2,
    "resolution": 48,
    "n_train_frames": 6,
    "n_test_frames": 2,
    "n_ood_frames": 5,
    "n_val_frames": 1,
}
SPLIT_SIZES = {"train": 6, "val": 1, "test": 2, "test_ood": 5}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_humans_dataset(tmp_path_factory.mktemp("humans") / "tiny", **TINY)


def _dataset_json(root: Path) -> dict:
    return json.loads((root / "dataset.json").read_text())


def test_same_seed_same_files_other_seed_other_people(tiny: Path, tmp_path: Path) -> None:
    again = make_humans_dataset(tmp_path / "again", **TINY)
    assert _dataset_json(again) == _dataset_json(tiny)
    for frame in _dataset_json(tiny)["splits"]["train"]:
        assert (again / frame["file"]).read_bytes() == (tiny / frame["file"]).read_bytes()
    other = make_humans_dataset(tmp_path / "other", **{**TINY, "seed": 1})
    mine, theirs = _dataset_json(tiny)["identities"], _dataset_json(other)["identities"]
    assert all(a["rest_joints"] != b["rest_joints"] for a, b in zip(mine, theirs, strict=True))
    assert all(a["shirt"] != b["shirt"] for a, b in zip(mine, theirs, strict=True))
    image = load_humans_split(tiny, "train").images
    assert not torch.equal(image, load_humans_split(other, "train").images)


def test_default_identities_differ_in_limbs_and_colours() -> None:
    people = sample_identities(0, HumansParams().n_identities)
    assert len(people) >= 6 and len({p.name for p in people}) == len(people)
    assert {p.pattern for p in people} == set(PATTERNS)
    joints = np.stack([rest_joints(p.proportions) for p in people])
    bones = [(j, p) for j, p in enumerate(PARENTS) if p >= 0]
    lengths = np.stack([np.linalg.norm(joints[:, j] - joints[:, p], axis=1) for j, p in bones], 1)
    assert (lengths.max(axis=0) / lengths.min(axis=0) > 1.1).all()  # every bone varies
    shape = lengths / np.array([p.proportions.height for p in people])[:, None]
    for i in range(len(people)):  # each pair differs in proportions, not only in height
        for j in range(i):
            assert np.abs(shape[i] / shape[j] - 1).max() > 0.03
    girths = [p.girth for p in people]
    assert max(girths) / min(girths) > 1.15
    shirts = np.array([p.shirt for p in people])
    distances = np.linalg.norm(shirts[:, None] - shirts[None], axis=-1)
    assert distances[~np.eye(len(people), dtype=bool)].min() > 0.05
    for person in people:  # stands on z = 0, 1.5 to 1.9 m tall, faces -y, its left is +x
        lo, hi = posed_bounds(body_primitives(person), np.tile(np.eye(4), (15, 1, 1)))
        assert abs(lo[2]) < 1e-9 and 1.5 < hi[2] < 1.9
        assert abs(hi[2] - person.proportions.height) < 1e-9
        rest = rest_joints(person.proportions)
        assert rest[joint("l_shoulder"), 0] > 0 > rest[joint("r_shoulder"), 0]
        feet = [p for p in body_primitives(person) if p.material == "shoes"]
        assert all(isinstance(f, Ellipsoid) and f.center[1] < 0 for f in feet)


def test_skeleton_and_primitives_follow_the_skinning_model() -> None:
    skeleton = humans_skeleton()
    assert len(skeleton) == 15 and skeleton.parents == PARENTS
    children = {p for p in PARENTS if p >= 0}
    assert set(LEAVES) == set(range(15)) - children
    person = sample_identities(3, 1)[0]
    rest = rest_joints(person.proportions)
    for prim in body_primitives(person):
        assert prim.joint not in LEAVES  # leaves are end sites that carry nothing
        if isinstance(prim, Capsule) and prim.radius < 0.06:  # limbs lie along their bones
            a = np.asarray(prim.a)
            kids = [j for j, p in enumerate(PARENTS) if p == prim.joint]
            on_bone = [np.allclose(a, rest[prim.joint]) or np.allclose(a, rest[k]) for k in kids]
            assert any(on_bone) or prim.joint == joint("spine")


def test_capsule_and_ellipsoid_depths_in_closed_form() -> None:
    r, half, d = 0.2, 0.5, 3.0
    a, b = np.array([-half, 0.0, 0.0]), np.array([half, 0.0, 0.0])
    origins = np.array(
        [[0.0, -d, 0.0], [0.0, -d, r / 2], [half + r / 2, -d, 0.0], [0, -d, 1.01 * r]]
    )
    dirs = np.tile([0.0, 1.0, 0.0], (4, 1))
    expected = [d - r, d - r * math.sqrt(3) / 2, d - r * math.sqrt(3) / 2, math.inf]
    np.testing.assert_allclose(intersect_capsule(origins, dirs, a, b, r), expected, rtol=1e-12)
    along_axis = intersect_capsule(np.array([[-d, 0.0, 0.0]]), np.array([[1.0, 0.0, 0.0]]), a, b, r)
    np.testing.assert_allclose(along_axis, [d - half - r])
    radii = np.array([0.3, 0.4, 0.5])
    hit = intersect_ellipsoid(origins[:1], dirs[:1], np.zeros(3), radii)
    np.testing.assert_allclose(hit, [d - 0.4])
    # The same capsule, posed by a rigid bone transform, seen through the centre pixel.
    capsule = Capsule(0, tuple(a), tuple(b), r, "skin")
    pose = np.eye(4)
    pose[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]  # 90 degrees about z: now along y
    pose[:3, 3] = (0.3, 0.0, 1.0)
    c2w = np.eye(4)
    c2w[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]  # OpenCV: looks along +y, image down is -z
    c2w[:3, 3] = (0.3, -d, 1.0)
    origin, rays = pixel_rays(c2w, (10.0, 10.0, 2.5, 2.5), 5, 5)
    hits = cast_rays(origin, rays.reshape(-1, 3), [capsule], pose[None])
    depth = hits.depth.reshape(5, 5)
    np.testing.assert_allclose(depth[2, 2], d - half - r, rtol=1e-12)
    np.testing.assert_allclose(hits.points.reshape(5, 5, 3)[2, 2], [-half - r, 0, 0], atol=1e-12)
    assert np.isinf(depth[0, 0])


def test_shading_is_baked_into_the_body() -> None:
    person = sample_identities(0, 1)[0]
    prims = body_primitives(person)
    c2w, intrinsics = fixed_camera(32)
    turn = np.eye(4)
    turn[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    still = render_rgba(person, prims, np.tile(np.eye(4), (15, 1, 1)), c2w, intrinsics, 32, 32)
    turned = render_rgba(person, prims, np.tile(turn, (15, 1, 1)), turn @ c2w, intrinsics, 32, 32)
    np.testing.assert_allclose(turned, still, atol=1e-9)


def test_joints_project_into_the_mask(tiny: Path) -> None:
    for split in SPLIT_SIZES:
        data = load_humans_split(tiny, split)
        alphas = data.alphas.numpy()
        assert (alphas.sum(axis=(1, 2)) > 0).all() and (alphas.min(axis=(1, 2)) == 0).all()
        border = np.concatenate([alphas[:, 0], alphas[:, -1], alphas[:, :, 0], alphas[:, :, -1]], 1)
        assert border.max() == 0, f"a body leaves the picture in split {split}"
        local = axis_angle_to_matrix(data.pose.double())
        translation = torch.tensor([f["translation"] for f in _dataset_json(tiny)["splits"][split]])
        rest = data.rest_joints.double()[data.identity]
        _, joints = forward_kinematics(PARENTS, rest, local, translation.double())
        K, w2c = data.cameras.intrinsics().double(), data.cameras.viewmats().double()
        cam = (w2c[:, None, :3, :3] @ joints[..., None])[..., 0] + w2c[:, None, :3, 3]
        pixels = (K[:, None] @ (cam / cam[..., 2:])[..., None])[..., 0]
        cols, rows = pixels[..., 0].floor().long(), pixels[..., 1].floor().long()
        padded = np.pad(alphas, ((0, 0), (1, 1), (1, 1)))
        for i in range(len(data)):
            for c, r in zip(cols[i].tolist(), rows[i].tolist(), strict=True):
                assert padded[i, r : r + 3, c : c + 3].max() > 0  # 3x3 around the joint
        # Exactly: a ray from the camera to any joint meets the body before reaching it.
        origin = data.cameras.c2w[:, :3, 3].double()
        for i in range(len(data)):
            person = sample_identities(0, TINY["n_identities"])[int(data.identity[i])]
            ray = joints[i] - origin[i]
            reach = ray.norm(dim=-1)
            dirs = (ray / reach[:, None]).numpy()
            bones = data.bone_transforms[i].double().numpy()
            hits = cast_rays(origin[i].numpy(), dirs, body_primitives(person), bones)
            assert (hits.depth <= reach.numpy() + 1e-4).all()


def test_test_split_is_in_distribution_and_ood_is_not() -> None:
    rng = np.random.default_rng(0)
    for _ in range(3):
        style = MotionStyle.sample(rng)
        walk = matrix_to_axis_angle(walking_turn(72, style))
        index = split_sequence(60, 10, 2)
        train, test = walk[index["train"], 1:], walk[index["test"], 1:]  # joint 0: the body turn
        lo, hi = train.min(axis=0), train.max(axis=0)
        slack = 0.1 * (hi - lo) + 0.02
        assert ((test >= lo - slack) & (test <= hi + slack)).all()
        ood, kinds = ood_poses(10, style, rng)
        ood = matrix_to_axis_angle(ood)[:, 1:]
        beyond = np.maximum(lo - slack - ood, ood - hi - slack).max(axis=(1, 2))
        assert (beyond > 0.5).all(), dict(zip(kinds, beyond.round(2), strict=True))
        turn = walk[index["train"], 0]
        assert np.abs(turn[:, :2]).max() < 1e-9  # the body turns about z only
    index = split_sequence(60, 10, 2)
    assert sorted(np.concatenate(list(index.values())).tolist()) == list(range(72))


def test_loader_round_trip(tiny: Path) -> None:
    meta = _dataset_json(tiny)
    assert meta["format"] == "tensorfields-humans" and meta["version"] == 1
    assert detect_format(tiny, "train") == "humans"
    for split, n in SPLIT_SIZES.items():
        data = load_split(tiny, split, background=(0.2, 0.4, 0.6))
        assert isinstance(data, FrameSplit) and len(data) == n * 2
        assert data.images.shape == (2 * n, 48, 48, 3) and data.alphas.shape == (2 * n, 48, 48)
        assert data.pose.shape == (2 * n, 15, 3) and data.bone_transforms.shape == (2 * n, 15, 4, 4)
        assert data.identity.tolist() == [0] * n + [1] * n
        assert data.identity_names == ["id00", "id01"] and data.rest_joints.shape == (2, 15, 3)
        assert data.skeleton == humans_skeleton()
        assert data.names[0].startswith(f"id00_{split}_")
        background = data.images[data.alphas == 0]
        assert len(background) and torch.allclose(background, torch.tensor([0.2, 0.4, 0.6]))
        translation = torch.tensor([f["translation"] for f in meta["splits"][split]]).double()
        local = axis_angle_to_matrix(data.pose.double())
        rest = data.rest_joints.double()[data.identity]
        expected, _ = forward_kinematics(PARENTS, rest, local, translation)
        torch.testing.assert_close(data.bone_transforms.double(), expected, atol=2e-6, rtol=0)
    for person, stored in zip(sample_identities(0, 2), meta["identities"], strict=True):
        np.testing.assert_allclose(
            stored["rest_joints"], rest_joints(person.proportions), atol=1e-8
        )
    half = load_humans_split(tiny, "val", downscale=2)
    assert half.images.shape[1:3] == (24, 24)
    full = load_humans_split(tiny, "val")
    torch.testing.assert_close(half.cameras.fx, full.cameras.fx / 2)
    torch.testing.assert_close(half.cameras.cx, full.cameras.cx / 2)


def _copy(tiny: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny, tmp_path / "copy"))


def test_bad_files_raise_data_error_naming_them(tiny: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty/dataset\.json: file not found"):
        load_humans_split(tmp_path / "empty", "train")
    root = _copy(tiny, tmp_path)
    meta = _dataset_json(root)
    (root / meta["splits"]["test"][1]["file"]).unlink()
    with pytest.raises(DataError, match=r"id00/test/\d+\.png.*not found"):
        load_humans_split(root, "test")
    with pytest.raises(DataError, match="no split 'nope'"):
        load_humans_split(root, "nope")
    meta["splits"]["val"][0]["pose"] = [[0.0, 0.0]] * 15
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"dataset\.json: split 'val', frame 0: pose must have"):
        load_humans_split(root, "val")
    meta["format"] = "blender"
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"dataset\.json: format must be 'tensorfields-humans'"):
        load_humans_split(root, "train")


def test_cache_is_reused_and_rerendered_when_params_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = {**TINY, "n_identities": 1, "resolution": 8, "n_ood_frames": 1}
    folder = ensure_humans_dataset(cache_dir=tmp_path / "humans", **small)
    real_render = generate._render_dataset

    def no_render(*args: object) -> None:
        raise AssertionError("rendered again")

    monkeypatch.setattr(generate, "_render_dataset", no_render)
    assert ensure_humans_dataset(cache_dir=folder, **small) == folder
    monkeypatch.setattr(generate, "_render_dataset", real_render)
    ensure_humans_dataset(cache_dir=folder, **{**small, "resolution": 6})
    assert _dataset_json(folder)["params"]["resolution"] == 6
    assert [p.name for p in tmp_path.iterdir()] == ["humans"]  # no temp folders left
    monkeypatch.setenv("TF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(generate, "_render_dataset", no_render)
    with pytest.raises(AssertionError, match="rendered again"):
        ensure_humans_dataset(**small)
    assert not (tmp_path / "cache" / "scenes" / "humans").exists()  # nothing half-written


def test_preset_and_data_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny: Path
) -> None:
    preset = load_preset("humans")
    assert (preset.dataset, preset.format, preset.background) == ("procedural", "humans", [0, 0, 0])
    monkeypatch.setattr(locate, "ensure_humans_dataset", lambda: tmp_path / "rendered")
    assert locate.find_scene_data(preset) == tmp_path / "rendered"
    assert locate.find_scene_data(preset, tiny) == tiny
    params = HumansParams()  # every default pose of every identity fits the preset's box
    lo_box, hi_box = np.array(preset.aabb[:3]), np.array(preset.aabb[3:])
    camera = fixed_camera(params.resolution)[0][:3, 3]
    for index, person in enumerate(sample_identities(params.seed, params.n_identities)):
        rest = rest_joints(person.proportions)
        for rotations, _, _ in generate._poses(person, index, params).values():
            _, _, transforms = generate._articulate(rotations, rest)
            for bones in transforms:
                lo, hi = posed_bounds(body_primitives(person), bones)
                assert (lo > lo_box).all() and (hi < hi_box).all()
                corners = np.stack([lo, hi])
                assert np.linalg.norm(corners - camera, axis=1).min() > preset.near


def test_cli_writes_a_loadable_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    args = ["humans", "--out", str(out), "--identities", "1", "--resolution", "16"]
    args += ["--train-frames", "3", "--test-frames", "1", "--ood-frames", "2", "--val-frames", "1"]
    entrypoint(args)
    assert f"ready: {out}" in capsys.readouterr().out
    data = load_split(out, "test_ood")
    assert isinstance(data, FrameSplit) and data.images.shape == (2, 16, 16, 3)
    with pytest.raises(SystemExit) as info:
        entrypoint(args)
    assert info.value.code == 2 and "--overwrite" in capsys.readouterr().err
    entrypoint([*args, "--overwrite", "--seed", "3"])
    assert _dataset_json(out)["params"]["seed"] == 3


def test_bad_parameters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="resolution must be >= 1, got 0"):
        make_humans_dataset(tmp_path / "x", resolution=0)
    with pytest.raises(ValueError, match="n_identities must be an integer"):
        HumansParams(n_identities=2.5)  # type: ignore[arg-type]
    assert not (tmp_path / "x").exists()
