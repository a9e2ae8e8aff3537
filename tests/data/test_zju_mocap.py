"""ZJU-MoCap (ARAH layout) loader: a tiny fixture written in that layout round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from tensorfields.core.skinning import axis_angle_to_matrix, forward_kinematics
from tensorfields.data.errors import DataError
from tensorfields.data.zju_mocap import SMPL_SKELETON, is_zju_mocap_subject, load_zju_mocap

SUBJECTS = ("CoreView_313", "CoreView_315")
CAMERAS = ("1", "2")
N_FRAMES, W, H = 3, 8, 6
PARENTS = SMPL_SKELETON.parents


def write_subject(root: Path, seed: int) -> dict:
    """One subject folder as ARAH's preprocessing writes it; returns what was written."""
    rng = np.random.default_rng(seed)
    rest = rng.normal(scale=0.3, size=(24, 3)).astype(np.float32)
    pose = rng.normal(scale=0.4, size=(N_FRAMES, 24, 3)).astype(np.float32)
    trans = rng.normal(size=(N_FRAMES, 3)).astype(np.float32)
    rotations = axis_angle_to_matrix(torch.from_numpy(pose))
    joints = torch.from_numpy(rest).expand(N_FRAMES, 24, 3)
    A, posed = forward_kinematics(PARENTS, joints, rotations)
    G, _ = forward_kinematics(PARENTS, joints, rotations, torch.from_numpy(trans))
    (root / "models").mkdir(parents=True)
    for f in range(N_FRAMES):
        np.savez(
            root / "models" / f"{f:06d}.npz",
            minimal_shape=np.zeros((10, 3), np.float32),
            betas=np.zeros((1, 10), np.float32),
            Jtr_posed=posed[f].numpy() + trans[f],  # ARAH's posed joints include trans ...
            bone_transforms=A[f].numpy(),  # ... its bone transforms do not
            trans=trans[f],
            root_orient=pose[f, 0],
            pose_body=pose[f, 1:22].reshape(63),
            pose_hand=pose[f, 22:].reshape(6),
        )
    params: dict = {"all_cam_names": list(CAMERAS)}
    for c, cam in enumerate(CAMERAS):
        R = axis_angle_to_matrix(torch.from_numpy(rng.normal(size=3))).numpy()
        K = [[10.0 + c, 0.0, 4.0], [0.0, 11.0, 3.0], [0.0, 0.0, 1.0]]
        T = rng.normal(size=(3, 1))
        params[cam] = {"K": K, "D": [[0.0]] * 5, "R": R.tolist(), "T": T.tolist()}
        (root / cam).mkdir()
        for f in range(N_FRAMES):
            iio.imwrite(root / cam / f"{f:06d}.jpg", rng.integers(0, 256, (H, W, 3), np.uint8))
            iio.imwrite(root / cam / f"{f:06d}.png", rng.choice([0, 1, 3], (H, W)).astype(np.uint8))
    (root / "cam_params.json").write_text(json.dumps(params))
    return {"rest": rest, "pose": pose, "G": G, "params": params}


@pytest.fixture
def zju(tmp_path: Path) -> tuple[list[Path], list[dict]]:
    roots = [tmp_path / name for name in SUBJECTS]
    return roots, [write_subject(root, seed) for seed, root in enumerate(roots)]


def test_layout_is_detected(zju) -> None:
    roots, _ = zju
    assert is_zju_mocap_subject(roots[0]) and not is_zju_mocap_subject(roots[0] / "models")


def test_shapes_names_identities_and_defaults(zju) -> None:
    roots, _ = zju
    split = load_zju_mocap(roots, cameras=list(CAMERAS))
    n = len(SUBJECTS) * len(CAMERAS) * N_FRAMES
    assert split.images.shape == (n, H, W, 3) and split.alphas.shape == (n, H, W)
    assert split.pose.shape == (n, 24, 3) and split.bone_transforms.shape == (n, 24, 4, 4)
    assert split.rest_joints.shape == (2, 24, 3) and len(split.skeleton) == 24
    assert split.identity_names == list(SUBJECTS)
    assert split.identity.tolist() == [0] * 6 + [1] * 6
    assert split.names[:4] == [f"CoreView_313_c1_00000{f}" for f in range(3)] + [
        "CoreView_313_c2_000000"
    ]
    assert set(split.alphas.unique().tolist()) == {0.0, 1.0}
    # 3DGS-Avatar's monocular protocol: train on camera 1, test every 30th frame of the others.
    assert load_zju_mocap(roots).names == [f"{s}_c1_00000{f}" for s in SUBJECTS for f in range(3)]
    assert load_zju_mocap(roots, "test").names == [f"{s}_c2_000000" for s in SUBJECTS]


def test_cameras_and_downscale(zju) -> None:
    roots, truth = zju
    split = load_zju_mocap(roots[:1], cameras=["2"])
    cam = truth[0]["params"]["2"]
    w2c = torch.eye(4, dtype=torch.float64)
    w2c[:3, :3], w2c[:3, 3] = torch.tensor(cam["R"]), torch.tensor(cam["T"])[:, 0]
    for c2w in split.cameras.c2w:
        torch.testing.assert_close(torch.linalg.inv(c2w.double()), w2c, atol=1e-5, rtol=0)
    assert (split.cameras.width, split.cameras.height) == (W, H)
    # OpenCV's K puts pixel centres at integers, tensorfields at +0.5.
    expected = torch.tensor([11.0, 11.0, 4.5, 3.5])
    got = [split.cameras.fx[0], split.cameras.fy[0], split.cameras.cx[0], split.cameras.cy[0]]
    torch.testing.assert_close(torch.stack(got), expected)
    half = load_zju_mocap(roots[:1], cameras=["2"], downscale=2)
    assert half.images.shape == (3, H // 2, W // 2, 3)
    assert (half.cameras.width, half.cameras.height) == (W // 2, H // 2)
    got = [half.cameras.fx[0], half.cameras.fy[0], half.cameras.cx[0], half.cameras.cy[0]]
    torch.testing.assert_close(torch.stack(got), expected / 2)
    blocks = split.alphas.reshape(3, H // 2, 2, W // 2, 2).mean(dim=(2, 4))
    torch.testing.assert_close(half.alphas, blocks)


def test_images_are_composited_on_background_outside_the_mask(zju) -> None:
    roots, _ = zju
    split = load_zju_mocap(roots, cameras=["2"], background=(0.0, 0.0, 1.0))
    for i, name in enumerate(split.names):
        subject, stem = name.split("_c2_")
        pixels = iio.imread(roots[SUBJECTS.index(subject)] / "2" / f"{stem}.jpg") / 255.0
        mask = iio.imread(roots[SUBJECTS.index(subject)] / "2" / f"{stem}.png") > 0
        expected = np.where(mask[..., None], pixels, [0.0, 0.0, 1.0])
        torch.testing.assert_close(split.images[i], torch.tensor(expected, dtype=torch.float32))
        torch.testing.assert_close(split.alphas[i], torch.tensor(mask, dtype=torch.float32))


def test_bone_transforms_rest_joints_and_poses_round_trip(zju) -> None:
    roots, truth = zju
    split = load_zju_mocap(roots, cameras=list(CAMERAS))
    for identity, t in enumerate(truth):
        torch.testing.assert_close(
            split.rest_joints[identity], torch.from_numpy(t["rest"]), atol=1e-5, rtol=0
        )
        frames = split.of_identity(identity)
        G, pose = t["G"].repeat(2, 1, 1, 1), torch.from_numpy(t["pose"]).repeat(2, 1, 1)
        torch.testing.assert_close(frames.bone_transforms, G, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(frames.pose, pose)


def test_frames_and_cameras_select(zju) -> None:
    roots, _ = zju
    split = load_zju_mocap(roots[1:], "test", cameras=["2", "1"], frames=(1, 3, 1))
    assert split.names == [f"CoreView_315_c{c}_00000{f}" for c in "21" for f in (1, 2)]
    assert load_zju_mocap(roots[1:], frames=(0, 0, 2)).names == [
        "CoreView_315_c1_000000",
        "CoreView_315_c1_000002",
    ]


def test_distortion_is_undone(zju) -> None:
    roots, _ = zju
    iio.imwrite(roots[0] / "1" / "000000.png", np.full((H, W), 255, np.uint8))
    plain = load_zju_mocap(roots[:1], frames=(0, 1, 1))
    path = roots[0] / "cam_params.json"
    params = json.loads(path.read_text())
    params["1"]["D"] = [[1.0], [0.0], [0.0], [0.0], [0.0]]  # strong barrel: k1 = 1
    path.write_text(json.dumps(params))
    fixed = load_zju_mocap(roots[:1], frames=(0, 1, 1))
    # The principal point (pixel row 3, column 4) maps to itself; corners come from outside.
    torch.testing.assert_close(fixed.images[0, 3, 4], plain.images[0, 3, 4])
    assert plain.alphas[0, 0, 0] == 1 and fixed.alphas[0, 0, 0] == 0


def test_bad_inputs_name_the_file(zju) -> None:
    roots, _ = zju
    root = roots[0]

    def error_for(**kwargs) -> DataError:
        with pytest.raises(DataError) as info:
            load_zju_mocap(roots, cameras=list(CAMERAS), **kwargs)
        return info.value

    (root / "2" / "000001.png").unlink()
    assert error_for().path == root / "2" / "000001.png"
    (root / "2" / "000001.jpg").unlink()
    assert error_for().path == root / "2" / "000001.jpg"
    fit = dict(np.load(root / "models" / "000000.npz"))
    del fit["trans"]
    np.savez(root / "models" / "000000.npz", **fit)
    error = error_for()
    assert error.path == root / "models" / "000000.npz" and "trans" in error.problem
    # Images exist for frame 2, so its model is missing.
    (root / "models" / "000002.npz").unlink()
    assert error_for().path == root / "models" / "000002.npz"
    with pytest.raises(DataError) as info:
        load_zju_mocap(roots, cameras=["7"])
    assert info.value.path == root / "cam_params.json" and "'7'" in info.value.problem
    (root / "cam_params.json").unlink()
    assert error_for().path == root / "cam_params.json"
    with pytest.raises(DataError, match="does not exist"):
        load_zju_mocap([root.parent / "CoreView_999"])


def test_feeds_the_migs_pipeline(zju, tmp_path: Path) -> None:
    """`tf-train migs --scene zju_mocap --data <folder of subjects>` trains, and the trained run
    renders the test views (too small here for SSIM, so no tf-eval)."""
    from tensorfields.cli import train as train_cli
    from tensorfields.pipeline.checkpoint import load_checkpoint
    from tensorfields.pipeline.runs import load_run
    from tensorfields.pipeline.scene_data import scene_data_for

    out = tmp_path / "outputs"
    train_cli.main(
        ["migs", "--scene", "zju_mocap", "--data", str(tmp_path), "--preset", "cpu",
         "--model.n-gaussians", "200", "--model.rank", "4", "--model.feature-dim", "4",
         "--model.network-width", "8", "--trainer.max-iterations", "2",
         "--trainer.eval-every", "0", "--trainer.final-eval-every", "0",
         "--trainer.device", "cpu", "--output-dir", str(out)]
    )  # fmt: skip
    (run,) = (out / "zju_mocap" / "migs").iterdir()
    state = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    assert state["tensor.u2"].shape == (2, 4) and state["rest_joints"].shape == (2, 24, 3)
    config, model, *_ = load_run(run)
    test = scene_data_for(config).test
    assert {name.split("_c")[0] for name in test.names} == set(SUBJECTS)
    for i in range(len(test)):
        assert model.render_view(test, i).rgb.shape == (H, W, 3)
