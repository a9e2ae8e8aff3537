"""MIGS end to end on a tiny procedural humans dataset: train, evaluate, add an identity."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tensorfields.cli import eval as eval_cli
from tensorfields.cli import train as train_cli
from tensorfields.data.dataset import SceneSplit
from tensorfields.data.humans.generate import make_humans_dataset
from tensorfields.data.loader import load_split
from tensorfields.models.migs import MIGSModel, MIGSModelConfig
from tensorfields.pipeline.checkpoint import load_checkpoint
from tensorfields.pipeline.config import load_config
from tensorfields.pipeline.datamanager import image_batch

TINY_DATA = dict(resolution=32, n_train_frames=4, n_test_frames=2, n_ood_frames=2, n_val_frames=1)
TINY_MODEL = dict(n_gaussians=300, rank=8, feature_dim=4, network_width=16, background=(0, 0, 0))


@pytest.fixture(scope="module")
def humans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_humans_dataset(
        tmp_path_factory.mktemp("data") / "humans", n_identities=2, **TINY_DATA
    )


def cli_args(out: Path, *extra: str) -> list[str]:
    return [
        "migs", "--preset", "cpu", "--model.n-gaussians", "300", "--model.rank", "8",
        "--model.feature-dim", "4", "--model.network-width", "16",
        "--trainer.max-iterations", "2", "--trainer.eval-every", "0",
        "--trainer.final-eval-every", "0", "--trainer.device", "cpu",
        "--output-dir", str(out), *extra,
    ]  # fmt: skip


def only_run(out: Path) -> Path:
    runs = sorted((out / "humans" / "migs").iterdir())
    assert len(runs) == 1, runs
    return runs[0]


def test_two_steps_evaluate_then_add_an_identity(humans: Path, tmp_path: Path) -> None:
    train_cli.main(cli_args(tmp_path / "base", "--scene", "humans", "--data", str(humans)))
    run = only_run(tmp_path / "base")
    config = load_config(run / "config.yaml")
    assert config.model.n_identities == 2 and config.model.n_joints == 15
    base = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    assert base["tensor.u2"].shape == (2, 8) and base["tensor.u3"].shape == (300, 8)

    for split in ("test", "test_ood"):
        eval_cli.main([str(run), "--split", split, "--no-lpips", "--device", "cpu"])
        result = json.loads((run / "eval" / split / "metrics.json").read_text())
        names = [v["name"] for v in result["views"]]
        assert len(names) == 4 and len(set(names)) == 4  # 2 identities x 2 frames
        assert all(0.0 < v["psnr"] < 100.0 for v in result["views"])
        assert len(list((run / "eval" / split).glob("*.png"))) == 4

    newcomer = make_humans_dataset(tmp_path / "newcomer", seed=7, n_identities=1, **TINY_DATA)
    tuned_out = tmp_path / "tuned"
    train_cli.main(cli_args(tuned_out, "--finetune-identity", str(newcomer),
                            "--model.finetune-from", str(run)))  # fmt: skip
    tuned_run = only_run(tuned_out)
    tuned = load_checkpoint(tuned_run / "checkpoints" / "last.pt")["model"]
    assert tuned["tensor.u2"].shape == (3, 8) and int(tuned["identity_offset"]) == 2
    frozen = [k for k in base if k.startswith(("skinning.", "deformation.")) or k in
              ("tensor.u1", "tensor.u3")]  # fmt: skip
    assert frozen and all(torch.equal(base[k], tuned[k]) for k in frozen)
    assert torch.equal(tuned["tensor.u2"][:2], base["tensor.u2"])
    assert not torch.equal(tuned["tensor.u2"][2], base["tensor.u2"].mean(0))  # it was fitted
    assert not torch.equal(tuned["colour.net.0.weight"], base["colour.net.0.weight"])
    eval_cli.main([str(tuned_run), "--no-lpips", "--device", "cpu"])
    assert len(json.loads((tuned_run / "eval" / "test" / "metrics.json").read_text())["views"]) == 2


def test_finetune_needs_the_trained_run(humans: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--model.finetune-from"):
        train_cli.main(["migs", "--finetune-identity", str(humans)])


def tiny_model(split, **changes) -> MIGSModel:
    model = MIGSModel(MIGSModelConfig(**{**TINY_MODEL, **changes}))
    model.prepare(split)
    return model


def test_training_lowers_the_loss(humans: Path) -> None:
    torch.manual_seed(0)
    split = load_split(humans, "train")
    model = tiny_model(split, n_gaussians=1000)
    optimizer = model.make_optimizer()
    batch = image_batch(split, 0)

    def loss() -> torch.Tensor:
        return model.loss(model.render_batch(batch, training=True), batch.target, 0)["loss"]

    before = float(loss().detach())
    for _ in range(40):
        total = loss()
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert float(loss().detach()) < 0.8 * before


def test_cp_and_dense_parameter_counts(humans: Path) -> None:
    split = load_split(humans, "train")
    cp, dense = tiny_model(split), tiny_model(split, factorization="dense")
    networks = sum(
        p.numel() for m in (cp.skinning, cp.deformation, cp.colour) for p in m.parameters()
    )
    rows = 11 + 4  # mean, log-scale, quaternion, f (4), opacity
    embeddings = 2 * 16
    assert cp.parameter_count() == (rows + 2 + 300) * 8 + networks + embeddings
    assert dense.parameter_count() == 2 * 300 * rows + networks + embeddings
    # Every identity starts from the one template.
    first, second = cp.tensor.identity(0), cp.tensor.identity(1)
    assert torch.allclose(first, second)


def test_renders_frames_and_declared_inputs(humans: Path) -> None:
    split = load_split(humans, "test_ood")
    model = tiny_model(split)
    out = model.render_view(split, 1)
    assert out.rgb.shape == (32, 32, 3) and out.accumulation.shape == (32, 32)
    assert out.accumulation.max() > 0.05  # the posed template is in view
    # Identity 1 in frame 1's pose (which was identity 0's) through forward kinematics; in
    # its own frame's pose it renders as that frame does.
    model.set_render_inputs(1, split.pose[1])
    assert model.render_camera(split.cameras, 1).rgb.shape == (32, 32, 3)
    own = int(split.identity[1])
    root = split.bone_transforms[1, 0, :3, :3] @ split.rest_joints[own, 0]
    model.set_render_inputs(own, split.pose[1], root + split.bone_transforms[1, 0, :3, 3])
    assert torch.allclose(model.render_camera(split.cameras, 1).rgb, out.rgb, atol=1e-4)
    with pytest.raises(ValueError, match="identity 5 out of range"):
        model.set_render_inputs(5)


def test_needs_frames_of_articulated_bodies(humans: Path) -> None:
    split = load_split(humans, "train")
    plain = SceneSplit(split.cameras, split.images, split.names, split.alphas)
    with pytest.raises(ValueError, match="articulated bodies"):
        tiny_model(plain)


def test_identity_flag_trains_one_identity(humans: Path, tmp_path: Path) -> None:
    args = cli_args(tmp_path, "--scene", "humans", "--data", str(humans), "--identity", "1",
                    "--model.factorization", "dense")  # fmt: skip
    train_cli.main(args)
    state = load_checkpoint(only_run(tmp_path) / "checkpoints" / "last.pt")["model"]
    assert state["tensor.rows"].shape == (1, 300, 15)


def test_viewer_controls_pick_identity_and_pose(humans: Path) -> None:
    split = load_split(humans, "train")
    model = tiny_model(split)
    controls = {c.name: c for c in model.render_controls()}
    assert (controls["identity"].minimum, controls["identity"].maximum) == (0, 1)
    assert controls["pose"].maximum == len(split)  # 0 = rest, k = training frame k - 1
    camera = split.cameras[0]
    rest = model.render_camera(camera, 0).accumulation
    with model.render_with({"identity": 1, "pose": 3}):
        posed = model.render_camera(camera, 0).accumulation
    assert not torch.allclose(rest, posed)
    assert torch.equal(model.render_camera(camera, 0).accumulation, rest)  # restored
    # Frame 2's own identity in frame 2's pose renders as the frame does.
    with model.render_with({"identity": int(split.identity[2]), "pose": 3}):
        again = model.render_camera(split.cameras, 2).rgb
    assert torch.allclose(again, model.render_view(split, 2).rgb, atol=1e-4)
    with pytest.raises(ValueError, match="no render controls"), model.render_with({"rank": 2}):
        pass
