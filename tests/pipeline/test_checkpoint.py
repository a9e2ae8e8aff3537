"""Checkpoint files: round trip, clear errors for torn or foreign files, atomic writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tensorfields.pipeline.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
)


def _payload() -> dict:
    return {
        "step": 7,
        "config": {"method": "tensorf-vm", "model": {"aabb": [-1.0, 1.0]}},
        "model": {"w": torch.arange(6.0).reshape(2, 3), "occ": torch.ones(2, 2, dtype=torch.bool)},
        "rng": torch.get_rng_state(),
        "history": "[]",
    }


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run" / "checkpoints" / "last.pt"  # parents are created
    save_checkpoint(path, _payload())
    loaded = load_checkpoint(path)
    assert loaded["step"] == 7 and loaded["config"] == _payload()["config"]
    assert torch.equal(loaded["model"]["w"], torch.arange(6.0).reshape(2, 3))
    assert loaded["model"]["occ"].dtype == torch.bool
    assert torch.equal(loaded["rng"], _payload()["rng"])
    assert loaded["format"] == "tensorfields-checkpoint" and loaded["version"] == 1
    assert latest_checkpoint(tmp_path / "run") == path


def test_overwrite_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1})
    save_checkpoint(path, {"step": 2})
    assert load_checkpoint(path)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, _payload())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value) and "truncated or corrupt" in str(info.value)


def test_foreign_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="not a tensorfields checkpoint") as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)
    torch.save([1, 2, 3], path)  # not even a dict
    with pytest.raises(CheckpointError, match="not a tensorfields checkpoint"):
        load_checkpoint(path)


def test_text_file(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    path.write_text("step: 7\nthis is not a checkpoint\n")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    assert str(path) in str(info.value)


def test_unsupported_version(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    torch.save({"format": "tensorfields-checkpoint", "version": 99}, path)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(path)


def test_missing_file_and_run_dir(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint") as info:
        load_checkpoint(tmp_path / "nope.pt")
    assert str(tmp_path / "nope.pt") in str(info.value)
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        latest_checkpoint(tmp_path)


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    torch.save({"format": "tensorfields-checkpoint", "version": 1, "obj": Path("x")}, path)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(path)  # weights_only: arbitrary classes are not unpickled


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint(path, _payload())
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    good = path.read_bytes()
    # A write that fails half way (an unpicklable object) leaves the old file and no temp file.
    with pytest.raises(Exception):  # noqa: B017 - whatever pickle raises
        save_checkpoint(path, {"step": 8, "bad": lambda: None})
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    assert path.read_bytes() == good
    assert load_checkpoint(path)["step"] == 7
