"""TensoRF (Chen et al., ECCV 2022): a VM or CP radiance field rendered by fixed-step marching."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.models.base import RenderControl
from tensorfields.models.marched import MarchedFieldConfig, MarchedFieldModel
from tensorfields.models.rank_growth import RankGrowthConfig, should_grow
from tensorfields.representations.tensorf_field import (
    TensoRFField,
    log_linear_voxel_counts,
    resolution_for_voxels,
)


@dataclass
class TensoRFModelConfig(MarchedFieldConfig):
    """TensoRF with the official lego recipe (configs/lego.txt + opt.py) as defaults."""

    decomposition: Literal["vm", "cp"] = "vm"
    """Factorization of the feature grid: 'vm' (vector-matrix) or 'cp'."""
    density_components: int = 16
    """Density components per plane/line pair (VM) or in total (CP)."""
    appearance_components: int = 48
    """Appearance components per plane/line pair (VM) or in total (CP)."""
    voxels_init: int = 128**3
    """Voxel count of the grid at the start."""
    voxels_final: int = 300**3
    """Voxel count of the grid after the last upsampling."""
    ranks: RankGrowthConfig = field(default_factory=RankGrowthConfig)
    """Component ranks grown during training (SlimmeRF's TRaIn); off for TensoRF."""


class TensoRFModel(MarchedFieldModel):
    def __init__(self, config: TensoRFModelConfig):
        aabb = torch.tensor(config.aabb, dtype=torch.float32)
        field = TensoRFField(
            aabb,
            resolution_for_voxels(aabb, config.voxels_init),
            kind=config.decomposition,
            density_components=config.density_components,
            appearance_components=config.appearance_components,
            **config.field_kwargs(),
        )
        super().__init__(config, field)
        # Ranks in use (density, appearance) and TRaIn's memory (last loss, step of the last
        # increment); buffers, so that a resumed run continues the same schedule.
        growth = config.ranks
        start = (
            (growth.density_start, growth.appearance_start)
            if growth.enabled
            else (config.density_components, config.appearance_components)
        )
        self.register_buffer("ranks", torch.tensor(start, dtype=torch.long))
        self.register_buffer("rank_rule", torch.tensor([-1.0, 0.0], dtype=torch.float64))
        self._apply_ranks()
        self.upsample_voxels = dict(
            zip(
                config.upsample_steps,
                log_linear_voxel_counts(
                    config.voxels_init, config.voxels_final, len(config.upsample_steps)
                ),
                strict=True,
            )
        )

    # -- growth -----------------------------------------------------------------------------------
    def upsample(self, step: int) -> bool:
        if step not in self.upsample_voxels:
            return False
        self.field.resize(resolution_for_voxels(self.field.aabb, self.upsample_voxels[step]))
        return True

    def after_carve(self, bounds: Float[Tensor, "6"]) -> None:
        """Crop to the hull's box and regrow the grid's starting voxel count inside it."""
        self.field.crop(bounds)
        self.field.resize(resolution_for_voxels(self.field.aabb, self.config.voxels_init))

    def density_l1(self) -> Tensor:
        # Mean over all components (the official weighting, whatever the rank), but only the
        # active ones are pulled: pulled to zero while masked, a rank-one product would have no
        # gradient left when it is switched on.
        density = self.field.density_field
        return sum(p[:, : density.rank].abs().sum() / p.numel() for p in density.parameters())

    def load_checkpoint_state(self, state: dict) -> None:
        # Checkpoints from before ranks existed: the config's starting ranks.
        defaults = {"ranks": self.ranks.clone(), "rank_rule": self.rank_rule.clone()}
        super().load_checkpoint_state({**defaults, **state})
        self._apply_ranks()

    # -- ranks (SlimmeRF) -----------------------------------------------------------------------
    def _apply_ranks(self) -> None:
        density, appearance = (int(r) for r in self.ranks.tolist())
        self.field.set_ranks(density, appearance)

    def rank(self) -> int:
        return int(self.ranks[0])

    def set_rank(self, rank: int) -> None:
        """Density rank ``rank`` and appearance rank in proportion (SlimmeRF: 3x density)."""
        d, a = self.config.density_components, self.config.appearance_components
        if not 1 <= rank <= d:
            raise ValueError(f"rank must be in [1, {d}] (the density components), got {rank}")
        self.ranks.copy_(torch.tensor([rank, max(1, rank * a // d)]))
        self._apply_ranks()

    def render_controls(self) -> list[RenderControl]:
        """SlimmeRF runs (ranks grown in training) offer the rank to render at."""
        if not self.config.ranks.enabled:
            return []
        d = self.config.density_components
        return [RenderControl("rank", "rank (density components)", 1, d, self.rank())]

    @contextmanager
    def render_with(self, values: dict[str, int]) -> Iterator[None]:
        with super().render_with(values):
            if "rank" not in values:
                yield
                return
            trained = self.ranks.clone()
            self.set_rank(int(values["rank"]))
            try:
                yield
            finally:
                self.ranks.copy_(trained)
                self._apply_ranks()

    def slim(self, rank: int) -> TensoRFModelConfig:
        """Keep the first ``rank`` density components (appearance in proportion) for good."""
        self.set_rank(rank)
        density, appearance = (int(r) for r in self.ranks.tolist())
        self.field.slim(density, appearance)
        self.config = dataclasses.replace(
            self.config,
            density_components=density,
            appearance_components=appearance,
            ranks=dataclasses.replace(self.config.ranks, enabled=False),
        )
        return self.config

    def after_step(self, step: int, losses: dict[str, float]) -> str | None:
        """TRaIn: grow the ranks when consecutive training losses change by more than υ (the
        loss with its L1 term: what the official code's loss record holds)."""
        growth = self.config.ranks
        if not growth.enabled:
            return None
        previous, last_growth = self.rank_rule.tolist()
        loss = float(losses["loss"])
        self.rank_rule[0] = loss
        full = (self.config.density_components, self.config.appearance_components)
        density, appearance = (int(r) for r in self.ranks.tolist())
        if (density, appearance) == full or not should_grow(
            previous, loss, step, int(last_growth), growth
        ):
            return None
        density = min(density + growth.density_step, full[0])
        appearance = min(appearance + growth.appearance_step, full[1])
        self.ranks.copy_(torch.tensor([density, appearance]))
        self.rank_rule[1] = step
        self._apply_ranks()
        return (
            f"step {step}: ranks grown to density {density}/{full[0]}, "
            f"appearance {appearance}/{full[1]}"
        )

    def progress_info(self) -> str:
        if not self.config.ranks.enabled:
            return ""
        density, appearance = self.ranks.tolist()
        return f"rank {density}/{appearance}"
