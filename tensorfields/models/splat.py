"""3D Gaussian splatting (Kerbl et al., SIGGRAPH 2023): the per-scene rasterized baseline.

Gaussians (representations/gaussians.py) rendered by ``rasterize_gaussians`` (gsplat on a GPU,
the project's tile rasterizer on a CPU), trained one whole image a step with L1 + D-SSIM.
Densification is gsplat's ``DefaultStrategy`` (the 3DGS clone/split/prune schedule), driven
through the model's ``after_optimizer_step`` hook with one Adam per parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.core.carving import carve_split
from tensorfields.core.occupancy import cell_centers
from tensorfields.core.rasterize import rasterize_gaussians
from tensorfields.data.cameras import Cameras
from tensorfields.data.gaussian_ply import read_gaussian_ply
from tensorfields.data.point_clouds import read_points
from tensorfields.models.base import Model, ModelConfig, RenderOutput
from tensorfields.models.losses import ssim_loss
from tensorfields.models.optimizers import OptimizerSet
from tensorfields.representations.gaussians import GaussianSet


@dataclass
class DensifyConfig:
    """Clone / split / prune and opacity resets (3DGS's schedule, run by gsplat's
    DefaultStrategy; thresholds on 3D scales are fractions of the scene scale)."""

    enabled: bool = True
    """Densify at all (off: the initial Gaussians are only optimised)."""
    grow_grad2d: float = 0.0002
    """Clone or split Gaussians whose mean screen-space gradient exceeds this."""
    grow_scale3d: float = 0.01
    """Below this largest scale a Gaussian is cloned, above it split."""
    prune_opa: float = 0.005
    """Prune Gaussians whose opacity falls below this."""
    prune_scale3d: float = 0.1
    """Prune Gaussians larger than this (after the first opacity reset)."""
    refine_start_iter: int = 500
    """First densification step."""
    refine_stop_iter: int = 15000
    """Last densification step."""
    refine_every: int = 100
    """Densify every N steps."""
    reset_every: int = 3000
    """Reset opacities to twice prune_opa every N steps (while densifying)."""
    max_gaussians: int = 0
    """Stop growing (pruning goes on) once there are this many Gaussians; 0: no cap (ours)."""


@dataclass
class SplatModelConfig(ModelConfig):
    """3D Gaussian splatting with the 3DGS reference recipe (gsplat's defaults) as defaults."""

    init_count: int = 100_000
    """Random initial Gaussians in the scene box (used without init_points / init_splats)."""
    init_region: Literal["box", "hull"] = "box"
    """Where the random initial Gaussians go: 'box' (the scene box, as 3DGS does) or 'hull':
    inside the visual hull of the training images' alpha masks (not in the paper; far less
    overdraw, so much faster on a CPU)."""
    carve_resolution: int = 128
    """Cells per axis of the visual hull that 'hull' samples from."""
    init_points: Path | None = None
    """Start from this point cloud instead: a PLY (x, y, z, optional red/green/blue) or COLMAP
    points3D.txt / points3D.bin."""
    init_splats: Path | None = None
    """Start from trained Gaussians in a 3DGS-layout PLY (ours or another tool's)."""
    init_opacity: float = 0.1
    """Opacity of the initial Gaussians."""
    init_scale: float = 1.0
    """Initial scale as a multiple of the mean distance to the 3 nearest neighbours."""
    sh_degree: int = 3
    """Highest spherical-harmonics degree of the colours."""
    sh_degree_interval: int = 1000
    """Raise the SH degree in use by one every N steps."""
    ssim_lambda: float = 0.2
    """Loss = (1 - λ) L1 + λ (1 - SSIM)."""
    lr_means: float = 1.6e-4
    """Learning rate of the means, times the scene scale; decays to lr_means_final_ratio."""
    lr_means_final_ratio: float = 0.01
    """Fraction of lr_means reached at the last step (the other rates stay constant)."""
    lr_scales: float = 5e-3
    """Learning rate of the log scales."""
    lr_quats: float = 1e-3
    """Learning rate of the quaternions."""
    lr_opacities: float = 5e-2
    """Learning rate of the opacity logits."""
    lr_sh0: float = 2.5e-3
    """Learning rate of the degree-0 SH coefficients (the base colour)."""
    lr_shN: float = 2.5e-3 / 20
    """Learning rate of the higher SH bands (20x lower, as in 3DGS)."""
    near_plane: float = 0.01
    """Gaussians nearer to the camera than this are culled."""
    densify: DensifyConfig = field(default_factory=DensifyConfig)


def scene_scale(cameras: Cameras) -> float:
    """3DGS's scene extent: 1.1 x the largest distance of a camera centre from their mean."""
    centres = cameras.c2w[:, :3, 3]
    return 1.1 * float((centres - centres.mean(0)).norm(dim=-1).max().clamp(min=1e-6))


def initial_gaussians(config: SplatModelConfig, seed: int = 0) -> GaussianSet:
    """The Gaussians a run starts from: trained splats, a point cloud, or random in the box."""
    if config.init_splats is not None:
        return GaussianSet(read_gaussian_ply(config.init_splats), config.sh_degree)
    options = {"opacity": config.init_opacity, "scale_factor": config.init_scale}
    if config.init_points is not None:
        points, colors = read_points(config.init_points)
        return GaussianSet.from_points(points, colors, config.sh_degree, **options)
    aabb = torch.tensor(config.aabb, dtype=torch.float32)
    return GaussianSet.random_in_box(config.init_count, aabb, config.sh_degree, seed, **options)


class SplatModel(Model):
    data_kind = "images"
    depth_kind = "z"  # the rasterizer renders expected camera z

    def __init__(self, config: SplatModelConfig):
        super().__init__()
        self.config = config
        self.splats = initial_gaussians(config)
        self.register_buffer("background", torch.tensor(config.background, dtype=torch.float32))
        # 0 until the training cameras are seen (step 0); saved, so resumed runs keep it.
        self.register_buffer("scene_scale", torch.zeros(()))
        # Trained splats (init_splats) come with every SH band fitted: use them all from the start.
        start_degree = config.sh_degree if config.init_splats is not None else 0
        self.register_buffer("active_sh_degree", torch.tensor(start_degree))
        self.strategy_state: dict = {"grad2d": None, "count": None, "scene_scale": 1.0}
        self._info: dict | None = None

    # -- optimisation ---------------------------------------------------------------------------
    def param_groups(self, lr_scale: float = 1.0) -> list[dict]:
        cfg, scale = self.config, float(self.scene_scale) or 1.0
        rates = {
            "means": cfg.lr_means * scale,
            "scales": cfg.lr_scales,
            "quats": cfg.lr_quats,
            "opacities": cfg.lr_opacities,
            "sh0": cfg.lr_sh0,
            "shN": cfg.lr_shN,
        }
        groups = []
        for name, param in self.splats.params.items():
            group = {"name": name, "params": [param], "lr": rates[name] * lr_scale}
            group["lr_decay_target"] = cfg.lr_means_final_ratio if name == "means" else 1.0
            groups.append(group)
        return groups

    def make_optimizer(self, lr_scale: float = 1.0) -> OptimizerSet:
        # eps 1e-15 as in 3DGS and gsplat: gradients of far-away Gaussians are tiny.
        return OptimizerSet(
            {g["name"]: torch.optim.Adam([g], eps=1e-15) for g in self.param_groups(lr_scale)}
        )

    def before_step(self, step: int, datamanager) -> bool:
        cfg = self.config
        scheduled = min(step // max(cfg.sh_degree_interval, 1), cfg.sh_degree)
        self.active_sh_degree.fill_(max(scheduled, int(self.active_sh_degree)))
        if float(self.scene_scale) == 0.0:  # the first step of a run (not of a resumed one)
            split = datamanager.split
            self.scene_scale.fill_(scene_scale(split.cameras))
            if self._starts_random() and cfg.init_region == "hull":
                self._init_in_hull(split)
            return True  # the means' learning rate depends on the scene scale
        return False

    def _starts_random(self) -> bool:
        return self.config.init_points is None and self.config.init_splats is None

    @torch.no_grad()
    def _init_in_hull(self, split, seed: int = 0) -> None:
        """Re-draw the random Gaussians uniformly inside the visual hull of the training masks."""
        cfg = self.config
        aabb = torch.tensor(cfg.aabb, dtype=torch.float32)
        resolution = (cfg.carve_resolution,) * 3
        hull = carve_split(split, aabb, resolution)
        if hull is None or not hull.any():
            print("No alpha masks or an empty hull: initial Gaussians stay spread over the box")
            return
        centres = cell_centers(aabb, resolution)[hull]
        g = torch.Generator().manual_seed(seed)
        cell = (aabb[3:] - aabb[:3]) / cfg.carve_resolution
        pick = torch.randint(centres.shape[0], (cfg.init_count,), generator=g)
        points = centres[pick] + (torch.rand(cfg.init_count, 3, generator=g) - 0.5) * cell
        colors = torch.rand(cfg.init_count, 3, generator=g)
        fresh = GaussianSet.from_points(
            points, colors, cfg.sh_degree, opacity=cfg.init_opacity, scale_factor=cfg.init_scale
        )
        self.splats.load_raw(fresh.raw())
        share = 100 * hull.float().mean().item()
        print(f"Initial Gaussians: {cfg.init_count} in the visual hull ({share:.1f}% of the box)")

    def loss(
        self, output: RenderOutput, target: Float[Tensor, "cams h w 3"], step: int
    ) -> dict[str, Tensor]:
        l1 = (output.rgb - target).abs().mean()
        d_ssim = ssim_loss(output.rgb, target)
        lam = self.config.ssim_lambda
        mse = torch.mean((output.rgb.detach() - target) ** 2)
        return {"loss": (1 - lam) * l1 + lam * d_ssim, "mse": mse, "l1": l1.detach()}

    def after_optimizer_step(self, step: int, optimizer) -> None:
        cfg = self.config.densify
        if not cfg.enabled or self._info is None or step >= cfg.refine_stop_iter:
            return
        from gsplat.strategy import DefaultStrategy
        from gsplat.strategy.ops import reset_opa

        grow = cfg.max_gaussians <= 0 or len(self.splats) < cfg.max_gaussians
        strategy = DefaultStrategy(
            prune_opa=cfg.prune_opa,
            grow_grad2d=cfg.grow_grad2d if grow else float("inf"),
            grow_scale3d=cfg.grow_scale3d,
            prune_scale3d=cfg.prune_scale3d,
            refine_start_iter=cfg.refine_start_iter,
            refine_stop_iter=cfg.refine_stop_iter,
            reset_every=cfg.reset_every,
            refine_every=cfg.refine_every,
        )
        self.strategy_state["scene_scale"] = float(self.scene_scale)
        params, optimizers = self.splats.params, optimizer.optimizers
        strategy.step_post_backward(params, optimizers, self.strategy_state, step, self._info)
        # gsplat 1.5.3 never resets opacities (its test reads `== 0 & step > 0`, which is
        # always False); 3DGS does, so reset here. Resetting twice in one step is harmless.
        if step > 0 and step % cfg.reset_every == 0:
            reset_opa(params, optimizers, self.strategy_state, value=cfg.prune_opa * 2.0)
        self._info = None

    def progress_info(self) -> str:
        return f"{len(self.splats) / 1000:.1f}K gaussians  sh {int(self.active_sh_degree)}"

    # -- rendering ------------------------------------------------------------------------------
    def render_cameras(self, cameras: Cameras) -> tuple[RenderOutput, dict]:
        """Rasterize every camera of ``cameras``: outputs ``(cams, h, w, ...)`` and gsplat-style
        ``info`` (2D means, radii) for densification."""
        means, quats, scales, opacities, sh = self.splats.gaussians()
        out = rasterize_gaussians(
            means,
            quats,
            scales,
            opacities,
            sh,
            cameras.viewmats(),
            cameras.intrinsics(),
            cameras.width,
            cameras.height,
            sh_degree=int(self.active_sh_degree),
            background=self.background,
            near_plane=self.config.near_plane,
        )
        return RenderOutput(out.rgb, out.depth, out.alpha), out.info

    def render_batch(self, batch, training: bool) -> RenderOutput:
        output, info = self.render_cameras(batch.cameras)
        if training and info["means2d"].requires_grad:
            info["means2d"].retain_grad()  # its gradient drives densification
            self._info = info
        return output

    @torch.no_grad()
    def render_camera(self, cameras: Cameras, index: int, chunk: int = 8192) -> RenderOutput:
        output, _ = self.render_cameras(cameras[index])
        return RenderOutput(output.rgb[0], output.depth[0], output.accumulation[0])

    def render_rays(self, origins, directions, training):
        raise ValueError("splat models render whole cameras, not individual rays")

    # -- checkpoints ----------------------------------------------------------------------------
    def state_for_checkpoint(self) -> dict:
        state = dict(self.state_dict())
        for key in ("grad2d", "count"):
            if self.strategy_state.get(key) is not None:
                state[f"strategy.{key}"] = self.strategy_state[key]
        return state

    def load_checkpoint_state(self, state: dict) -> None:
        state = dict(state)
        for key in ("grad2d", "count"):
            self.strategy_state[key] = state.pop(f"strategy.{key}", None)
        super().load_checkpoint_state(state)

    def export_splats(self) -> dict[str, Tensor]:
        """Raw Gaussian parameters for :func:`~tensorfields.data.gaussian_ply.write_gaussian_ply`,
        with the SH bands not yet in use left out (so a viewer renders what training saw)."""
        raw = self.splats.raw()
        raw["shN"] = raw["shN"][:, : (int(self.active_sh_degree) + 1) ** 2 - 1]
        return raw
