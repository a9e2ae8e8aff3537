"""The one interface every method implements, for ray-marched and rasterized models alike."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from torch import Tensor, nn

from tensorfields.data.cameras import Cameras


@dataclass
class RenderOutput:
    """What a render returns: per ray ``(n, ...)``, or per pixel ``(h, w, ...)`` for a camera."""

    rgb: Float[Tensor, "*batch 3"]
    depth: Float[Tensor, " *batch"]
    accumulation: Float[Tensor, " *batch"]
    stats: dict[str, float] = field(default_factory=dict)


class Model(nn.Module):
    """A representation joined to its renderer, with its losses and training hooks.

    The trainer drives every method through these calls only:
    ``param_groups`` (Adam groups), ``render_rays`` / ``render_camera``, ``loss``,
    ``before_step`` (schedule hooks; returns True when parameters changed shape or identity,
    so the optimizer must be rebuilt), ``after_step`` and ``progress_info`` (training-time
    state such as ranks), and ``state_for_checkpoint`` / ``load_checkpoint_state``.
    """

    def param_groups(self, lr_scale: float = 1.0) -> list[dict]:
        raise NotImplementedError

    def render_rays(
        self, origins: Float[Tensor, "n 3"], directions: Float[Tensor, "n 3"], training: bool
    ) -> RenderOutput:
        raise NotImplementedError

    def loss(
        self, output: RenderOutput, target: Float[Tensor, "n 3"], step: int
    ) -> dict[str, Tensor]:
        raise NotImplementedError

    def before_step(self, step: int, datamanager) -> bool:
        return False

    def after_step(self, step: int, losses: dict[str, float]) -> str | None:
        """Hook after an optimizer step (``step`` iterations done); a returned line is logged."""
        return None

    def progress_info(self) -> str:
        """A short state summary for the progress bar (e.g. current ranks)."""
        return ""

    def rank(self) -> int | None:
        """The density rank renders use now; None for models without component ranks."""
        return None

    def set_rank(self, rank: int) -> None:
        """Render with the first ``rank`` components only (factor models; SlimmeRF slimming)."""
        raise ValueError(f"{type(self).__name__} has no component ranks to set")

    def slim(self, rank: int):
        """Drop every component above ``rank`` for good; returns the model config that builds
        the smaller model (for export)."""
        raise ValueError(f"{type(self).__name__} has no component ranks to slim")

    @torch.no_grad()
    def render_camera(self, cameras: Cameras, index: int, chunk: int = 8192) -> RenderOutput:
        """Render the full image of camera ``index``, ``chunk`` rays at a time."""
        origins, directions = cameras.rays(index)
        h, w = origins.shape[:2]
        origins, directions = origins.reshape(-1, 3), directions.reshape(-1, 3)
        parts = [
            self.render_rays(origins[i : i + chunk], directions[i : i + chunk], training=False)
            for i in range(0, origins.shape[0], chunk)
        ]
        return RenderOutput(
            rgb=torch.cat([p.rgb for p in parts]).reshape(h, w, 3),
            depth=torch.cat([p.depth for p in parts]).reshape(h, w),
            accumulation=torch.cat([p.accumulation for p in parts]).reshape(h, w),
        )

    def state_for_checkpoint(self) -> dict:
        """Everything needed to rebuild this model, shapes included (they change in training)."""
        return self.state_dict()

    def load_checkpoint_state(self, state: dict) -> None:
        """Load a state whose tensors may have other shapes than this freshly built model's."""
        own = dict(self.named_parameters()) | dict(self.named_buffers())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if missing or unexpected:
            raise KeyError(
                f"checkpoint does not match the model: missing {missing}, unexpected {unexpected}"
            )
        for name, tensor in own.items():
            tensor.data = state[name].to(device=tensor.device, dtype=tensor.dtype).clone()
