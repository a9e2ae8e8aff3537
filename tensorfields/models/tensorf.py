"""TensoRF (Chen et al., ECCV 2022): a VM or CP radiance field rendered by fixed-step marching."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.core.bitfield import pack_bits
from tensorfields.core.carving import carve_visual_hull, covered_pixels
from tensorfields.core.occupancy import (
    OccupancyGrid,
    cell_centers,
    dilate,
    occupancy_bits,
    occupied_bounds,
    query_occupancy,
)
from tensorfields.core.rays import ray_aabb_intersect
from tensorfields.core.render import accumulate_along_rays, render_transmittance
from tensorfields.core.sampling import march_rays, sample_points
from tensorfields.models.base import Model, RenderOutput
from tensorfields.models.rank_growth import RankGrowthConfig, should_grow
from tensorfields.representations.tensorf_field import (
    TensoRFField,
    log_linear_voxel_counts,
    resolution_for_voxels,
)


@dataclass
class TensoRFModelConfig:
    """TensoRF with the official lego recipe (configs/lego.txt + opt.py) as defaults."""

    decomposition: Literal["vm", "cp"] = "vm"
    """Factorization of the feature grid: 'vm' (vector-matrix) or 'cp'."""
    density_components: int = 16
    """Density components per plane/line pair (VM) or in total (CP)."""
    appearance_components: int = 48
    """Appearance components per plane/line pair (VM) or in total (CP)."""
    appearance_dim: int = 27
    """Width of the appearance basis output fed to the shading MLP."""
    init_scale: float = 0.1
    """Factors start as randn * init_scale (official: 0.1 for VM, 0.2 for CP)."""
    voxels_init: int = 128**3
    """Voxel count of the grid at the start."""
    voxels_final: int = 300**3
    """Voxel count of the grid after the last upsampling."""
    upsample_steps: tuple[int, ...] = (2000, 3000, 4000, 5500, 7000)
    """Iterations at which the grid grows (log-linearly in voxel count)."""
    alpha_mask_steps: tuple[int, ...] = (2000, 4000)
    """Occupancy (alpha mask) updates: the first shrinks the box, the second filters rays."""
    occupancy_update_every: int = 0
    """Also refresh the occupancy grid every N iterations after the first update (0: never)."""
    occupancy_init: Literal["none", "carve"] = "none"
    """'none' (official: march the whole box until the first update) or 'carve': start from the
    visual hull of the training images' alpha masks, and shrink the box to it (not in the paper)."""
    carve_resolution: int = 128
    """Resolution per axis of the carved occupancy grid."""
    alpha_threshold: float = 1e-4
    """A cell is occupied when the (dilated) alpha of one step there exceeds this."""
    max_mask_resolution: int = 256
    """Cap on the occupancy grid resolution per axis."""
    step_ratio: float = 0.5
    """Marching step as a fraction of the voxel size."""
    distance_scale: float = 25.0
    """Density multiplier (TensoRF's distance scale)."""
    density_shift: float = -10.0
    """Density = softplus(feature + shift)."""
    weight_threshold: float = 1e-4
    """Appearance and the MLP run only on samples whose weight exceeds this."""
    termination_threshold: float = 1e-4
    """In training, samples behind the point where transmittance drops below this are skipped."""
    l1_weight_initial: float = 8e-5
    """L1 on density factors until the first occupancy update."""
    l1_weight_rest: float = 4e-5
    """L1 on density factors after it."""
    lr_factors: float = 0.02
    """Adam learning rate of the grid factors."""
    lr_network: float = 1e-3
    """Adam learning rate of the basis matrix and the shading MLP."""
    feature_pe: int = 2
    """Positional-encoding frequencies on the features fed to the MLP."""
    view_pe: int = 2
    """Positional-encoding frequencies on the view direction."""
    mlp_width: int = 128
    """Hidden width of the shading MLP."""
    shading_precision: Literal["float32", "bfloat16"] = "float32"
    """Precision of the shading MLP's products: 'bfloat16' (autocast, float32 weights) is about
    twice as fast on CPUs with AVX512-BF16 and on recent GPUs (not in the paper)."""
    aabb: tuple[float, ...] = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)
    """Scene box (xmin, ymin, zmin, xmax, ymax, zmax); set from the scene preset."""
    near: float = 2.0
    """Near distance along rays; set from the scene preset."""
    far: float = 6.0
    """Far distance along rays; set from the scene preset."""
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Colour behind the scene; set from the scene preset."""
    ranks: RankGrowthConfig = field(default_factory=RankGrowthConfig)
    """Component ranks grown during training (SlimmeRF's TRaIn); off for TensoRF."""


class TensoRFModel(Model):
    def __init__(self, config: TensoRFModelConfig):
        super().__init__()
        self.config = config
        aabb = torch.tensor(config.aabb, dtype=torch.float32)
        self.field = TensoRFField(
            aabb,
            resolution_for_voxels(aabb, config.voxels_init),
            kind=config.decomposition,
            density_components=config.density_components,
            appearance_components=config.appearance_components,
            appearance_dim=config.appearance_dim,
            init_scale=config.init_scale,
            density_shift=config.density_shift,
            feature_pe=config.feature_pe,
            view_pe=config.view_pe,
            hidden=config.mlp_width,
            shading_precision=config.shading_precision,
        )
        # An empty grid means "not computed yet": every sample in the box is marched.
        self.register_buffer("occupancy", torch.zeros(0, 0, 0, dtype=torch.bool))
        self.register_buffer("occupancy_aabb", aabb.clone())
        # The visual hull when carving is on (empty otherwise); occupancy never leaves it.
        self.register_buffer("hull", torch.zeros(0, 0, 0, dtype=torch.bool))
        self.register_buffer("hull_aabb", aabb.clone())
        self.register_buffer("background", torch.tensor(config.background, dtype=torch.float32))
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
        # Bitfield of `occupancy` for marching, rebuilt when the grid or its box change.
        self._grid: OccupancyGrid | None = None
        self._grid_source: tuple | None = None
        self.upsample_voxels = dict(
            zip(
                config.upsample_steps,
                log_linear_voxel_counts(
                    config.voxels_init, config.voxels_final, len(config.upsample_steps)
                ),
                strict=True,
            )
        )

    # -- optimisation ---------------------------------------------------------------------------
    def param_groups(self, lr_scale: float = 1.0) -> list[dict]:
        f = self.field
        factors = list(f.density_field.parameters()) + list(f.appearance_field.parameters())
        network = list(f.basis.parameters()) + list(f.head.parameters())
        return [
            {"name": "factors", "params": factors, "lr": self.config.lr_factors * lr_scale},
            {"name": "network", "params": network, "lr": self.config.lr_network * lr_scale},
        ]

    def l1_weight(self, step: int) -> float:
        """Official schedule: the L1 weight drops after the first occupancy (alpha-mask) update."""
        steps = self.config.alpha_mask_steps
        after_first = bool(steps) and step >= steps[0]
        return self.config.l1_weight_rest if after_first else self.config.l1_weight_initial

    def density_l1(self) -> Tensor:
        # Mean over all components (the official weighting, whatever the rank), but only the
        # active ones are pulled: pulled to zero while masked, a rank-one product would have no
        # gradient left when it is switched on.
        density = self.field.density_field
        return sum(p[:, : density.rank].abs().sum() / p.numel() for p in density.parameters())

    def loss(
        self, output: RenderOutput, target: Float[Tensor, "n 3"], step: int
    ) -> dict[str, Tensor]:
        mse = torch.mean((output.rgb - target) ** 2)
        l1 = self.density_l1()
        return {"loss": mse + self.l1_weight(step) * l1, "mse": mse, "l1": l1}

    def load_checkpoint_state(self, state: dict) -> None:
        # Checkpoints from before ranks existed: the config's starting ranks.
        defaults = {"ranks": self.ranks.clone(), "rank_rule": self.rank_rule.clone()}
        super().load_checkpoint_state({**defaults, **state})
        self._grid = self._grid_source = None
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

    # -- rendering --------------------------------------------------------------------------------
    def occupancy_grid(self) -> OccupancyGrid | None:
        """The occupancy as a bitfield grid (None before the first update: march everything)."""
        if self.occupancy.numel() == 0:
            return None
        if self._grid is None or not self._grid_is_current():
            self._grid = OccupancyGrid.from_dense(self.occupancy, self.occupancy_aabb.clone())
            self._remember_grid_source()
        return self._grid

    def _remember_grid_source(self) -> None:
        # Holding the tensors keeps their ids from being reused; versions catch in-place edits.
        occ, box = self.occupancy, self.occupancy_aabb
        self._grid_source = (occ, occ._version, box, box._version)

    def _grid_is_current(self) -> bool:
        occ, box = self.occupancy, self.occupancy_aabb
        src = self._grid_source
        return (
            src is not None
            and src[0] is occ
            and src[1] == occ._version
            and src[2] is box
            and src[3] == box._version
        )

    def step_size(self) -> float:
        return float(self.field.voxel_size().mean()) * self.config.step_ratio

    def render_rays(
        self, origins: Float[Tensor, "n 3"], directions: Float[Tensor, "n 3"], training: bool
    ) -> RenderOutput:
        n = origins.shape[0]
        cfg = self.config
        t_min, t_max = ray_aabb_intersect(origins, directions, self.field.aabb, cfg.near, cfg.far)
        offsets = torch.rand_like(t_min) if training else None
        ray_idx, t0, t1 = march_rays(
            origins, directions, t_min, t_max, self.step_size(), offsets, self.occupancy_grid()
        )
        xyz = sample_points(origins, directions, ray_idx, t0, t1)
        field = self.field
        reuse = None
        if torch.is_grad_enabled() and ray_idx.numel() > 0:
            # A cheap no-grad pass finds where each ray is already opaque; samples behind that
            # point cannot change the image, so the differentiable pass skips them (and reuses
            # the densities of the others instead of recomputing them).
            with torch.no_grad():
                features = field.density_features(xyz)
                _, transmittance = render_transmittance(
                    field.density_from_features(features) * cfg.distance_scale,
                    t0,
                    t1,
                    ray_idx,
                    n,
                    early_stop_eps=cfg.termination_threshold,
                )
            alive = transmittance > cfg.termination_threshold
            ray_idx, t0, t1, xyz = ray_idx[alive], t0[alive], t1[alive], xyz[alive]
            reuse = features[alive]
        features = field.density_features(xyz, reuse)
        sigmas = field.density_from_features(features) * cfg.distance_scale
        weights, _ = render_transmittance(sigmas, t0, t1, ray_idx, n)
        acc = accumulate_along_rays(weights, ray_idx, None, n)[:, 0]
        depth = accumulate_along_rays(weights, ray_idx, (0.5 * (t0 + t1))[:, None], n)[:, 0]
        shade = weights > cfg.weight_threshold
        rgbs = self.field.color(xyz[shade], directions[ray_idx[shade]])
        rgb = accumulate_along_rays(weights[shade], ray_idx[shade], rgbs, n)
        rgb = rgb + (1.0 - acc)[:, None] * self.background
        stats = {"samples": float(ray_idx.numel()), "shaded": float(shade.sum())}
        return RenderOutput(
            rgb=rgb, depth=depth / acc.clamp(min=1e-10), accumulation=acc, stats=stats
        )

    # -- schedule -------------------------------------------------------------------------------
    def before_step(self, step: int, datamanager) -> bool:
        """Occupancy updates, box shrink, ray filtering and grid upsampling, as in TensoRF."""
        cfg = self.config
        rebuild = False
        if step == 0 and cfg.occupancy_init == "carve" and self.occupancy.numel() == 0:
            self.carve(datamanager.split)
            self.filter_training_rays(datamanager)
            rebuild = True
        first_mask = cfg.alpha_mask_steps[0] if cfg.alpha_mask_steps else None
        periodic = (
            cfg.occupancy_update_every > 0
            and first_mask is not None
            and step > first_mask
            and step % cfg.occupancy_update_every == 0
        )
        if step in cfg.alpha_mask_steps or periodic:
            self.update_occupancy()
            if step == first_mask:
                self.field.crop(occupied_bounds(self.occupancy, self.occupancy_aabb))
                rebuild = True
            if len(cfg.alpha_mask_steps) > 1 and step == cfg.alpha_mask_steps[1]:
                self.filter_training_rays(datamanager)
        if step in self.upsample_voxels:
            self.field.resize(resolution_for_voxels(self.field.aabb, self.upsample_voxels[step]))
            rebuild = True
        return rebuild

    @torch.no_grad()
    def carve(self, split) -> None:
        """Occupancy from the visual hull of the training masks; regrow the grid in its bounds."""
        if split.alphas is None:
            return
        cams = split.cameras
        intrinsics = torch.stack([cams.fx, cams.fy, cams.cx, cams.cy], dim=-1)
        resolution = (self.config.carve_resolution,) * 3
        aabb = self.field.aabb.detach().cpu().clone()
        grid = carve_visual_hull(cams.c2w, intrinsics, split.alphas > 1e-3, aabb, resolution)
        grid = dilate(grid)
        device = self.field.aabb.device
        self.occupancy = self.hull = grid.to(device)
        self.occupancy_aabb = aabb.to(device)
        self.hull_aabb = aabb.to(device).clone()
        bounds = occupied_bounds(grid, aabb)
        self.field.crop(bounds.to(device))
        self.field.resize(resolution_for_voxels(self.field.aabb, self.config.voxels_init))
        kept = grid.float().mean().item()
        print(f"Carved occupancy: {100 * kept:.1f}% of cells kept; box {bounds.tolist()}")

    @torch.no_grad()
    def filter_training_rays(self, datamanager) -> None:
        """Drop training rays that cannot reach occupied space (TensoRF's ray filtering).

        Occupied cells are splatted into each training view (conservative), which costs a
        fraction of marching every training ray as the official code does.
        """
        split = datamanager.split
        cams = split.cameras
        intrinsics = torch.stack([cams.fx, cams.fy, cams.cx, cams.cy], dim=-1)
        mask = covered_pixels(
            cams.c2w,
            intrinsics,
            self.occupancy.cpu(),
            self.occupancy_aabb.cpu(),
            cams.height,
            cams.width,
        )
        datamanager.keep_pixels(mask)

    @torch.no_grad()
    def update_occupancy(self, chunk: int = 2**18) -> None:
        """Alpha of one marching step at each cell centre, dilated, thresholded (TensoRF)."""
        cap = self.config.max_mask_resolution
        resolution = tuple(min(r, cap) for r in self.field.resolution)
        aabb = self.field.aabb.clone()
        centers = cell_centers(aabb, resolution).reshape(-1, 3)
        step = self.step_size()
        alpha = torch.cat(
            [
                1.0
                - torch.exp(
                    -self.field.density(centers[i : i + chunk]) * self.config.distance_scale * step
                )
                for i in range(0, centers.shape[0], chunk)
            ]
        ).reshape(resolution)
        bits = occupancy_bits(alpha, self.config.alpha_threshold, kernel=3)
        if self.hull.numel() > 0:  # space carved away by the masks stays empty
            hull = query_occupancy(centers, self.hull, self.hull_aabb).reshape(resolution)
            bits &= pack_bits(hull)
        if not bits.any():
            # An untrained field can fall below the threshold everywhere; an empty grid would
            # stop all learning, so keep marching what was marched before.
            print("Occupancy update skipped: no cell above the alpha threshold yet")
            return
        self._grid = OccupancyGrid(bits, resolution, aabb.clone())
        self.occupancy = self._grid.dense()
        self.occupancy_aabb = aabb
        self._remember_grid_source()
