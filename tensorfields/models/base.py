"""The one interface every method implements, for ray-marched and rasterized models alike."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ClassVar, Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from tensorfields.data.cameras import Cameras
from tensorfields.models.optimizers import DenseAdam


@dataclass
class ModelConfig:
    """What every method's config has: the scene's box, depth range and background (copied
    from the scene preset)."""

    aabb: tuple[float, ...] = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
    """Scene box (xmin, ymin, zmin, xmax, ymax, zmax); set from the scene preset."""
    near: float = 2.0
    """Near distance along rays; set from the scene preset."""
    far: float = 6.0
    """Far distance along rays; set from the scene preset."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Colour behind the scene; set from the scene preset."""


@dataclass(frozen=True)
class RenderControl:
    """A render setting a model offers viewers: an integer from ``minimum`` to ``maximum``
    (a slider or a picker), e.g. SlimmeRF's rank or MIGS's identity and pose."""

    name: str
    label: str
    minimum: int
    maximum: int
    value: int


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
    ``make_optimizer``, ``render_batch`` (a batch of the kind ``data_kind`` names: ray batches
    or whole images), ``render_camera``, ``loss``, ``after_optimizer_step``,
    ``before_step`` (schedule hooks; returns True when parameters changed shape or identity,
    so the optimizer must be rebuilt), ``after_step`` and ``progress_info`` (training-time
    state such as ranks), and ``state_for_checkpoint`` / ``load_checkpoint_state``.
    """

    data_kind: ClassVar[Literal["rays", "images"]] = "rays"
    """What a training batch holds: shuffled rays (ray marching) or one whole image (splats)."""
    depth_kind: ClassVar[Literal["ray", "z"]] = "ray"
    """What ``RenderOutput.depth`` measures: distance along the unit ray direction (marching)
    or the camera's z (rasterizers); back-projecting depth into points needs to know."""

    def prepare(self, split) -> None:
        """Fit the model's shapes to the training split before the first step (e.g. how many
        identities a multi-identity model holds); nothing for most methods."""

    def param_groups(self, lr_scale: float = 1.0) -> list[dict]:
        """Adam parameter groups; a group may carry ``lr_decay_target`` (its own final
        learning-rate fraction) instead of the trainer's."""
        raise NotImplementedError

    def make_optimizer(self, lr_scale: float = 1.0) -> torch.optim.Optimizer:
        """One fused Adam over ``param_groups`` (TensoRF's betas)."""
        return DenseAdam(self.param_groups(lr_scale), betas=(0.9, 0.99))

    def render_batch(self, batch, training: bool) -> RenderOutput:
        """Render a training batch (:mod:`tensorfields.data.batches`) of this model's kind."""
        return self.render_rays(batch.origins, batch.directions, training)

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

    def after_optimizer_step(self, step: int, optimizer) -> None:
        """Right after the optimizer stepped at ``step`` (densification edits parameters and
        optimizer state here)."""

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

    def render_controls(self) -> list[RenderControl]:
        """The render settings this model offers (none by default); viewers show them without
        knowing the model's class and render inside :meth:`render_with`."""
        return []

    @contextmanager
    def render_with(self, values: dict[str, int]) -> Iterator[None]:
        """Renders inside this block use ``values`` (names from :meth:`render_controls`); the
        training state is restored after it."""
        unknown = set(values) - {c.name for c in self.render_controls()}
        if unknown:
            raise ValueError(f"{type(self).__name__} has no render controls {sorted(unknown)}")
        yield

    # -- density and colour at points (mesh export); models without a density field raise --
    def _no_density_field(self) -> ValueError:
        return ValueError(
            f"{type(self).__name__} has no density field to sample: meshes need a density "
            "field (a ray-marched method such as tensorf-vm, slimmerf or strivec)"
        )

    def density_bounds(self) -> Float[Tensor, "6"]:
        """Box (xmin, ymin, zmin, xmax, ymax, zmax) outside which :meth:`density_at` is 0: the
        region a mesh export samples (on the model's device)."""
        raise self._no_density_field()

    def step_size(self) -> float:
        """Length of one marching step (alpha thresholds such as TensoRF's mesh level are per
        step)."""
        raise self._no_density_field()

    def density_at(self, points: Float[Tensor, "n 3"]) -> Float[Tensor, " n"]:
        """Volume density at world points, in the renderer's units (per world length: a step
        of length d has alpha ``1 - exp(-density * d)``); 0 where renders see nothing."""
        raise self._no_density_field()

    def color_at(
        self, points: Float[Tensor, "n 3"], directions: Float[Tensor, "n 3"]
    ) -> Float[Tensor, "n 3"]:
        """Colour in [0, 1] of world points seen along unit ray ``directions`` (the way a
        camera ray travels), without the background."""
        raise self._no_density_field()

    def export_splats(self) -> dict[str, Tensor]:
        """Raw Gaussian parameters (3DGS layout) for PLY export; splat models only."""
        raise ValueError(f"{type(self).__name__} has no Gaussians to export as PLY")

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

    def render_view(self, split, index: int) -> RenderOutput:
        """Render view ``index`` of a split as it was seen (methods whose renders depend on more
        than the camera, such as an identity and a pose, read it from the split)."""
        device = next(self.parameters()).device
        return self.render_camera(split.cameras[index].to(device), 0)

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
