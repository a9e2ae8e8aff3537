"""Radiance fields rendered by fixed-step marching over an occupancy grid (TensoRF, Strivec).

The model owns what the TensoRF family shares: the occupancy grid and its schedule (carving,
alpha-mask updates, box shrink, ray filtering), marching with early termination, compositing,
the loss. A field plugs in with ``aabb``, ``resolution``, ``voxel_size()``, ``crop``,
``locate`` (lookups shared by one render's passes), ``density_features`` /
``density_from_features`` / ``density``, ``color`` and its ``factor_parameters`` /
``network_parameters``; subclasses add how it grows (``upsample``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from tensorfields.core.bitfield import pack_bits
from tensorfields.core.carving import carve_split, covered_pixels
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
from tensorfields.models.base import Model, ModelConfig, RenderOutput
from tensorfields.representations.radiance_field import Located


@dataclass
class MarchedFieldConfig(ModelConfig):
    """Renderer, schedule and optimiser settings shared by the TensoRF family (official
    TensoRF lego recipe as defaults)."""

    appearance_dim: int = 27
    """Width of the appearance basis output fed to the shading MLP."""
    init_scale: float = 0.1
    """Factors start as randn * init_scale (official: 0.1 for VM, 0.2 for CP and Strivec)."""
    upsample_steps: tuple[int, ...] = (2000, 3000, 4000, 5500, 7000)
    """Iterations at which the factors gain resolution (TensoRF: the voxel count grows
    log-linearly; Strivec: the lines get more nodes)."""
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

    def field_kwargs(self) -> dict:
        """Constructor arguments every field of the family takes from this config."""
        return {
            "appearance_dim": self.appearance_dim,
            "init_scale": self.init_scale,
            "density_shift": self.density_shift,
            "feature_pe": self.feature_pe,
            "view_pe": self.view_pe,
            "hidden": self.mlp_width,
            "shading_precision": self.shading_precision,
        }


def _select(located: Located | None, index: Int[Tensor, " m"]) -> Located | None:
    return None if located is None else located[index]


def _positions(mask: Bool[Tensor, " n"]) -> Int[Tensor, " m"]:
    """Indices of a mask's set entries: selecting several tensors with them (index_select) is
    several times faster than indexing each with the mask, which searches it every time."""
    return mask.nonzero().squeeze(1)


class MarchedFieldModel(Model):
    """A field (``self.field``) rendered by marching; see the module docstring for its interface."""

    def __init__(self, config: MarchedFieldConfig, field):
        super().__init__()
        self.config = config
        self.field = field
        aabb = torch.tensor(config.aabb, dtype=torch.float32)
        # An empty grid means "not computed yet": every sample in the box is marched.
        self.register_buffer("occupancy", torch.zeros(0, 0, 0, dtype=torch.bool))
        self.register_buffer("occupancy_aabb", aabb.clone())
        # The visual hull when carving is on (empty otherwise); occupancy never leaves it.
        self.register_buffer("hull", torch.zeros(0, 0, 0, dtype=torch.bool))
        self.register_buffer("hull_aabb", aabb.clone())
        self.register_buffer("background", torch.tensor(config.background, dtype=torch.float32))
        # Bitfield of `occupancy` for marching, rebuilt when the grid or its box change.
        self._grid: OccupancyGrid | None = None
        self._grid_source: tuple | None = None

    # -- optimisation ---------------------------------------------------------------------------
    def param_groups(self, lr_scale: float = 1.0) -> list[dict]:
        f, cfg = self.field, self.config
        return [
            {"name": "factors", "params": f.factor_parameters(), "lr": cfg.lr_factors * lr_scale},
            {"name": "network", "params": f.network_parameters(), "lr": cfg.lr_network * lr_scale},
        ]

    def l1_weight(self, step: int) -> float:
        """Official schedule: the L1 weight drops after the first occupancy (alpha-mask) update."""
        steps = self.config.alpha_mask_steps
        after_first = bool(steps) and step >= steps[0]
        return self.config.l1_weight_rest if after_first else self.config.l1_weight_initial

    def density_l1(self) -> Tensor:
        raise NotImplementedError

    def loss(
        self, output: RenderOutput, target: Float[Tensor, "n 3"], step: int
    ) -> dict[str, Tensor]:
        mse = torch.mean((output.rgb - target) ** 2)
        l1 = self.density_l1()
        return {"loss": mse + self.l1_weight(step) * l1, "mse": mse, "l1": l1}

    def load_checkpoint_state(self, state: dict) -> None:
        super().load_checkpoint_state(state)
        self._grid = self._grid_source = None

    # -- growth hooks ---------------------------------------------------------------------------
    def fit_to_data(self, datamanager) -> bool:
        """Before the first step (after carving): data-driven setup; True when parameters
        changed."""
        return False

    def upsample(self, step: int) -> bool:
        """Give the field more resolution at scheduled steps; True when parameters changed."""
        return False

    def after_carve(self, bounds: Float[Tensor, "6"]) -> None:
        """The visual hull's box is known: fit the field to it."""
        self.field.crop(bounds)

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
        # A cheap no-grad pass finds where each ray is already opaque; samples behind that point
        # cannot change the image (by more than the transmittance left, < 1e-4), so the passes
        # after it skip them and reuse the densities and the field's lookups of the others.
        # Without gradients it pays only where that pass is fused (stops each ray early); the
        # generic one would be a second density pass.
        early_stop = torch.is_grad_enabled() or field.fused_density_pass(xyz)
        if early_stop and ray_idx.numel() > 0:
            features, transmittance, located = field.density_transmittance(
                xyz, t0, t1, ray_idx, n, cfg.distance_scale, cfg.termination_threshold
            )
            alive = _positions(transmittance > cfg.termination_threshold)
            ray_idx, t0, t1, xyz, reuse = (
                v.index_select(0, alive) for v in (ray_idx, t0, t1, xyz, features)
            )
            located = _select(located, alive)
        else:
            located = field.locate(xyz)  # the field's lookups, shared by the passes below
        features = field.density_features(xyz, reuse, located)
        sigmas = field.density_from_features(features) * cfg.distance_scale
        weights, _ = render_transmittance(sigmas, t0, t1, ray_idx, n)
        acc = accumulate_along_rays(weights, ray_idx, None, n)[:, 0]
        depth = accumulate_along_rays(weights, ray_idx, (0.5 * (t0 + t1))[:, None], n)[:, 0]
        shade = _positions(weights > cfg.weight_threshold)
        shade_rays = ray_idx.index_select(0, shade)
        rgbs = field.color(
            xyz.index_select(0, shade),
            directions.index_select(0, shade_rays),
            _select(located, shade),
        )
        rgb = accumulate_along_rays(weights.index_select(0, shade), shade_rays, rgbs, n)
        rgb = rgb + (1.0 - acc)[:, None] * self.background
        stats = {"samples": float(ray_idx.numel()), "shaded": float(shade.numel())}
        return RenderOutput(
            rgb=rgb, depth=depth / acc.clamp(min=1e-10), accumulation=acc, stats=stats
        )

    # -- density and colour at points (mesh export) ----------------------------------------------
    def density_bounds(self) -> Float[Tensor, "6"]:
        return self.field.aabb.detach().clone()

    def _rendered(self, xyz: Float[Tensor, "n 3"]) -> Tensor:
        """Points marching can sample: inside the field's box and in an occupied cell."""
        box = self.field.aabb
        inside = ((xyz >= box[:3]) & (xyz <= box[3:])).all(dim=-1)
        if self.occupancy.numel() > 0:
            inside &= query_occupancy(xyz, self.occupancy, self.occupancy_aabb)
        return inside

    @torch.no_grad()
    def density_at(self, points: Float[Tensor, "n 3"], chunk: int = 2**18) -> Float[Tensor, " n"]:
        """The density renders composite (the field's times the distance scale), 0 where
        marching never samples (outside the box, empty occupancy cells); in chunks."""
        device = self.background.device
        out = torch.zeros(points.shape[0], device=device)
        for i in range(0, points.shape[0], chunk):
            xyz = points[i : i + chunk].to(device)
            keep = self._rendered(xyz)
            if keep.any():
                part = out[i : i + chunk]  # a view: writes land in `out`
                part[keep] = self.field.density(xyz[keep]) * self.config.distance_scale
        return out.to(points.device)

    @torch.no_grad()
    def color_at(
        self, points: Float[Tensor, "n 3"], directions: Float[Tensor, "n 3"], chunk: int = 2**16
    ) -> Float[Tensor, "n 3"]:
        """The appearance branch's colour at points seen along ``directions``, in chunks."""
        device = self.background.device
        parts = [
            self.field.color(points[i : i + chunk].to(device), directions[i : i + chunk].to(device))
            for i in range(0, points.shape[0], chunk)
        ]
        return torch.cat(parts).float().to(points.device) if parts else points.new_zeros(0, 3)

    # -- schedule -------------------------------------------------------------------------------
    def before_step(self, step: int, datamanager) -> bool:
        """Occupancy updates, box shrink, ray filtering and upsampling, as in TensoRF."""
        cfg = self.config
        rebuild = False
        if step == 0 and cfg.occupancy_init == "carve" and self.occupancy.numel() == 0:
            self.carve(datamanager.split)
            self.filter_training_rays(datamanager)
            rebuild = True
        if step == 0:
            rebuild = self.fit_to_data(datamanager) or rebuild
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
        return self.upsample(step) or rebuild

    @torch.no_grad()
    def carve(self, split) -> None:
        """Occupancy from the visual hull of the training masks; regrow the grid in its bounds."""
        resolution = (self.config.carve_resolution,) * 3
        aabb = self.field.aabb.detach().cpu().clone()
        grid = carve_split(split, aabb, resolution)
        if grid is None:
            return
        grid = dilate(grid)
        device = self.field.aabb.device
        self.occupancy = self.hull = grid.to(device)
        self.occupancy_aabb = aabb.to(device)
        self.hull_aabb = aabb.to(device).clone()
        bounds = occupied_bounds(grid, aabb)
        self.after_carve(bounds.to(device))
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

    def mask_cells(self) -> tuple[tuple[int, int, int], Tensor, Tensor]:
        """The occupancy grid's resolution (the field's, capped), box and cell centres (c, 3)."""
        cap = self.config.max_mask_resolution
        resolution = tuple(min(r, cap) for r in self.field.resolution)
        aabb = self.field.aabb.clone()
        return resolution, aabb, cell_centers(aabb, resolution).reshape(-1, 3)

    @torch.no_grad()
    def step_alpha(self, xyz: Tensor, chunk: int = 2**18) -> Tensor:
        """Alpha of one marching step at each point (what occupancy thresholds), in chunks."""
        step = self.step_size()
        return torch.cat(
            [
                1.0
                - torch.exp(
                    -self.field.density(xyz[i : i + chunk]) * self.config.distance_scale * step
                )
                for i in range(0, xyz.shape[0], chunk)
            ]
        )

    @torch.no_grad()
    def update_occupancy(self, chunk: int = 2**18) -> None:
        """Alpha of one marching step at each cell centre, dilated, thresholded (TensoRF)."""
        resolution, aabb, centers = self.mask_cells()
        alpha = self.step_alpha(centers, chunk).reshape(resolution)
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
