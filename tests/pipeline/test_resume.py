"""Resuming a run gives the same model as training straight through, across shape changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tensorfields.pipeline.checkpoint import load_checkpoint
from tensorfields.pipeline.trainer import Trainer


class _Killed(Exception):
    pass


class _KilledAfterCheckpoint(Trainer):
    """A trainer whose process 'dies' right after writing the checkpoint of step ``kill_at``."""

    kill_at = 0

    def save(self) -> None:
        super().save()
        if self.step == self.kill_at:
            raise _Killed


def _assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].shape == b[name].shape, name
        if a[name].dtype == torch.bool:
            assert torch.equal(a[name], b[name]), name
        else:
            torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0, msg=name)


@pytest.fixture
def straight(tiny_config, blocks_scene, tmp_path: Path) -> Trainer:
    """Run A: 4 steps in one go (carve, crop, upsample and ray filtering all happen)."""
    trainer = Trainer(tiny_config(), tmp_path / "A", blocks_scene)
    summary = trainer.train()
    assert summary["step"] == 4
    return trainer


def test_resume_with_more_iterations_matches_straight_run(
    straight: Trainer, tiny_config, blocks_scene, tmp_path: Path
) -> None:
    first = Trainer(tiny_config(max_iterations=2), tmp_path / "B", blocks_scene)
    assert first.train()["step"] == 2
    assert load_checkpoint(first.checkpoint_path)["step"] == 2
    resolution_at_2 = first.model.field.resolution

    second = Trainer(tiny_config(max_iterations=4), tmp_path / "B", blocks_scene)
    second.resume()
    assert second.step == 2 and second.model.field.resolution == resolution_at_2
    summary = second.train()

    assert summary["step"] == second.step == straight.step == 4
    assert json.loads((tmp_path / "B" / "metrics.json").read_text())["step"] == 4
    assert second.model.field.resolution != resolution_at_2  # resumed across the upsampling
    assert second.model.field.resolution == straight.model.field.resolution
    _assert_same_state(straight.model.state_dict(), second.model.state_dict())
    assert torch.equal(second.datamanager.active, straight.datamanager.active)
    assert load_checkpoint(second.checkpoint_path)["step"] == 4


def test_resume_after_a_kill_matches_straight_run(
    straight: Trainer, tiny_config, blocks_scene, tmp_path: Path
) -> None:
    # Checkpoint every step, die after the checkpoint of step 3. The resumed step 3 (the ray
    # filtering) rebuilds no optimizer, so it runs on the restored Adam moments, and it draws
    # its batch from the restored sampler and jitter from the restored RNG.
    config = tiny_config(checkpoint_every=1)
    killed = _KilledAfterCheckpoint(config, tmp_path / "C", blocks_scene)
    killed.kill_at = 3
    with pytest.raises(_Killed):
        killed.train()
    assert load_checkpoint(killed.checkpoint_path)["step"] == 3

    resumed = Trainer(config, tmp_path / "C", blocks_scene)
    resumed.resume()
    assert resumed.step == 3
    assert torch.equal(resumed.datamanager.active, killed.datamanager.active)
    assert resumed.optimizer.state_dict()["state"]  # Adam moments restored, not fresh
    assert resumed.train()["step"] == 4
    assert torch.equal(resumed.datamanager.active, straight.datamanager.active)
    assert len(resumed.datamanager) < resumed.datamanager.pixels.shape[0]  # rays were filtered
    _assert_same_state(straight.model.state_dict(), resumed.model.state_dict())


def test_resume_without_checkpoint_is_a_clear_error(
    tiny_config, blocks_scene, tmp_path: Path
) -> None:
    from tensorfields.pipeline.checkpoint import CheckpointError

    trainer = Trainer(tiny_config(), tmp_path / "empty", blocks_scene)
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        trainer.resume()
