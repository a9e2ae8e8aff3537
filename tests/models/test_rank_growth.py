"""SlimmeRF's TRaIn: the rule on scripted losses, the model's ranks, and a run where they grow."""

from __future__ import annotations

import dataclasses

import pytest

from tensorfields.models.rank_growth import RankGrowthConfig, should_grow
from tensorfields.models.tensorf import TensoRFModel
from tensorfields.pipeline.scene_data import scene_data_for
from tensorfields.pipeline.trainer import Trainer


def test_rule_on_a_scripted_loss_sequence() -> None:
    cfg = RankGrowthConfig(enabled=True, threshold=0.4, min_gap=2)
    losses = [1.0, 0.9, 0.5, 0.45, 0.2, 0.19, 0.1, 0.3]
    grown, previous, last = [], -1.0, 0
    for step, loss in enumerate(losses, start=1):
        if should_grow(previous, loss, step, last, cfg):
            grown.append(step)
            last = step
        previous = loss
    # step 3: |0.9 - 0.5| / 0.5 = 0.8 > 0.4; step 5: 1.25 but only 2 steps after; step 7: 0.9;
    # step 8: |0.1 - 0.3| / 0.3 = 0.67 but 1 step after step 7.
    assert grown == [3, 7]
    assert not should_grow(-1.0, 0.1, 100, 0, cfg)  # no previous loss yet


def _growing(model_config, **ranks) -> TensoRFModel:
    ranks = {"enabled": True, "threshold": 0.0, "min_gap": 0, **ranks}
    growth = dataclasses.replace(model_config.ranks, **ranks)
    return TensoRFModel(dataclasses.replace(model_config, ranks=growth))


def test_ranks_start_low_and_grow_to_full(tiny_config) -> None:
    config = tiny_config().model  # 4 density, 6 appearance components
    model = _growing(config, density_start=1, appearance_start=3, appearance_step=3)
    assert model.ranks.tolist() == [1, 3] and model.progress_info() == "rank 1/3"
    assert model.field.density_field.rank == 1 and model.field.appearance_field.rank == 3
    assert model.after_step(1, {"loss": 1.0}) is None  # no previous loss
    message = model.after_step(2, {"loss": 0.5})
    assert message == "step 2: ranks grown to density 2/4, appearance 6/6"
    assert model.field.appearance_field.rank == 6
    for step in range(3, 10):
        model.after_step(step, {"loss": 1.0 / step})
    assert model.ranks.tolist() == [4, 6] and model.after_step(10, {"loss": 9.0}) is None


def test_steady_loss_keeps_the_rank(tiny_config) -> None:
    model = _growing(tiny_config().model, threshold=0.4)
    for step in range(1, 20):
        assert model.after_step(step, {"loss": 0.5 + 0.01 * (step % 2)}) is None
    assert model.ranks.tolist() == [1, 3]


def test_set_rank_and_full_rank_tensorf(tiny_config) -> None:
    model = TensoRFModel(tiny_config().model)
    assert model.ranks.tolist() == [4, 6] and model.progress_info() == ""
    model.set_rank(2)
    assert model.ranks.tolist() == [2, 3]
    with pytest.raises(ValueError, match=r"rank must be in \[1, 4\]"):
        model.set_rank(0)


def test_training_grows_ranks_and_resume_keeps_them(tiny_config, tmp_path) -> None:
    config = tiny_config("slimmerf", max_iterations=6)
    config.model.ranks = dataclasses.replace(config.model.ranks, threshold=0.0, min_gap=2)
    trainer = Trainer(config, tmp_path / "run", scene_data_for(config))
    trainer.train()
    ranks = trainer.model.ranks.tolist()
    assert ranks[0] > 1 and ranks[1] > 3
    resumed = Trainer(config, tmp_path / "run", scene_data_for(config))
    resumed.resume()
    assert resumed.model.ranks.tolist() == ranks
    assert resumed.model.field.density_field.rank == ranks[0]
    assert resumed.model.rank_rule[0] >= 0  # the last loss, remembered


def test_checkpoints_without_ranks_still_load(tiny_config) -> None:
    model = TensoRFModel(tiny_config().model)
    state = {k: v for k, v in model.state_for_checkpoint().items() if "rank" not in k}
    fresh = TensoRFModel(tiny_config().model)
    fresh.load_checkpoint_state(state)
    assert fresh.ranks.tolist() == [4, 6]


def test_rank_is_a_render_control_that_leaves_training_alone(tiny_config) -> None:
    assert TensoRFModel(tiny_config().model).render_controls() == []  # no TRaIn, no slider
    model = _growing(tiny_config().model, density_start=2, appearance_start=3)
    (control,) = model.render_controls()
    assert (control.name, control.minimum, control.maximum, control.value) == ("rank", 1, 4, 2)
    with model.render_with({"rank": 4}):
        assert model.ranks.tolist() == [4, 6] and model.field.density_field.rank == 4
    assert model.ranks.tolist() == [2, 3] and model.field.density_field.rank == 2
