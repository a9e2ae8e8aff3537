"""Strivec (Gao et al., ICCV 2023): sparse multi-scale local CP tri-vector tensors.

Before the first step the model finds where the scene is (a short coarse TensoRF pre-training,
or points from a PLY), places local tensors around those points at every scale, and marks the
space they cover as the occupancy grid; then it trains like TensoRF (same renderer, schedule
and losses, see :mod:`tensorfields.models.marched`), its lines gaining nodes on the upsampling
schedule.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import Tensor

from tensorfields.core.occupancy import cell_centers, dilate, query_occupancy
from tensorfields.data.ply import read_ply_points
from tensorfields.models.marched import MarchedFieldConfig, MarchedFieldModel
from tensorfields.models.tensorf import TensoRFModel, TensoRFModelConfig
from tensorfields.representations.placement import place_tensors
from tensorfields.representations.strivec_field import Scale, StrivecField


@dataclass
class StrivecModelConfig(MarchedFieldConfig):
    """Strivec with the official lego recipe (configs/synthetic-nerf/default/lego.txt)."""

    init_scale: float = 0.2
    """Lines start as randn * init_scale (official: 0.2)."""
    l1_weight_initial: float = 1e-5
    """L1 on the density lines (official: 1e-5 throughout)."""
    l1_weight_rest: float = 1e-5
    """L1 on the density lines after the first occupancy update."""
    voxel_sizes: tuple[float, ...] = (0.4, 0.2, 0.1)
    """Per scale: the coarse points are voxelized at this size, one tensor per occupied voxel."""
    half_extents: tuple[float, ...] = (0.3, 0.15, 0.075)
    """Per scale: half the side of each tensor's cube."""
    density_ranks: tuple[int, ...] = (32, 24, 16)
    """Per scale: density CP components of each local tensor."""
    appearance_ranks: tuple[int, ...] = (48, 48, 48)
    """Per scale: appearance CP components of each local tensor."""
    line_cells_init: tuple[int, ...] = (29, 15, 7)
    """Per scale: cells along each line at the start (nodes = cells + 1)."""
    line_cells_final: tuple[int, ...] = (121, 61, 31)
    """Per scale: cells along each line after the last upsampling (linear schedule between)."""
    top_k: int = 4
    """Tensors mixed per point and scale: the K nearest covering it (inverse distance)."""
    max_tensors: int | None = None
    """Cap on the tensors of a scale (farthest-point sampling of the centres); None: no cap."""
    init_points: Path | None = None
    """PLY point cloud of the scene's surfaces to place tensors around (skips the coarse stage)."""
    coarse_steps: int = 2000
    """Iterations of the coarse geometry stage (a small TensoRF VM) when no PLY is given."""
    coarse_voxels: int = 100**3
    """Voxel count of the coarse TensoRF (official: a ~1M-voxel dense grid)."""
    coarse_mlp_width: int = 32
    """Hidden width of the coarse TensoRF's shading MLP, fed its features and the view
    direction without encodings (the stage is there for geometry; with the full MLP_Fea head
    that MLP was 70% of its time while the fog lasts, 98 s for 300 lego steps on 2 cores
    against 29 s). The official coarse stage, DVGO's, reads colour from a grid with no MLP."""
    coarse_point_resolution: int = 128
    """Grid per axis on which the coarse density is read for points."""
    coarse_alpha_threshold: float = 0.1
    """Cells whose coarse alpha exceeds this become points. The official 1e-4 suits its
    5000-step DVGO grid; after a few hundred steps of the small TensoRF it keeps 64% of lego's
    box (fog), 0.1 about a sixth of that (measured at 300 steps)."""


class StrivecModel(MarchedFieldModel):
    def __init__(self, config: StrivecModelConfig):
        per_scale = [
            len(v)
            for v in (
                config.voxel_sizes,
                config.half_extents,
                config.density_ranks,
                config.appearance_ranks,
                config.line_cells_init,
                config.line_cells_final,
            )
        ]
        if len(set(per_scale)) != 1:
            raise ValueError(f"every per-scale setting needs one value per scale, got {per_scale}")
        scales = [
            Scale(v, r, d, a)
            for v, r, d, a in zip(
                config.voxel_sizes,
                config.half_extents,
                config.density_ranks,
                config.appearance_ranks,
                strict=True,
            )
        ]
        field = StrivecField(
            torch.tensor(config.aabb, dtype=torch.float32),
            scales,
            [c + 1 for c in config.line_cells_init],
            top_k=config.top_k,
            **config.field_kwargs(),
        )
        super().__init__(config, field)
        # Fraction of the coarse points inside the placed tensors (saved with the run).
        self.register_buffer("point_coverage", torch.tensor(-1.0))
        steps = len(config.upsample_steps)
        self.upsample_nodes = {
            step: [
                round(a + (b - a) * (i + 1) / steps) + 1
                for a, b in zip(config.line_cells_init, config.line_cells_final, strict=True)
            ]
            for i, step in enumerate(config.upsample_steps)
        }

    # -- placement --------------------------------------------------------------------------------
    def fit_to_data(self, datamanager) -> bool:
        if self.field.placed:
            return False
        cfg = self.config
        if cfg.init_points is not None:
            points = read_ply_points(cfg.init_points)
            source = f"{points.shape[0]} points from {cfg.init_points}"
        else:
            points = self.coarse_points(datamanager)
            source = f"{points.shape[0]} points from a {cfg.coarse_steps}-step coarse TensoRF"
        if points.shape[0] == 0:
            raise ValueError(f"Strivec placement: no points ({source}); nothing to place at")
        points = points.to(self.background.device)
        centres = [place_tensors(points, v, cfg.max_tensors) for v in cfg.voxel_sizes]
        self.field.place(centres)
        # Coverage statistic on at most 200k of the points (a fixed subset).
        sample = torch.randperm(points.shape[0], generator=torch.Generator().manual_seed(0))
        subset = points[sample[:200_000].to(points.device)]
        self.point_coverage.fill_(self.field.coverage(subset).float().mean())
        self.occupancy_from_coverage()
        print(f"Strivec placement: {self.placement_summary()} ({source})")
        return True

    def placement_summary(self) -> str:
        counts = ", ".join(
            f"{n} at {v:g}" for n, v in zip(self.field.counts, self.config.voxel_sizes, strict=True)
        )
        params = self.field.parameter_count()
        coverage = float(self.point_coverage)
        return f"tensors {counts}; {params / 1e6:.2f}M parameters; points covered {coverage:.1%}"

    def coarse_points(self, datamanager) -> Tensor:
        """Train a small TensoRF VM for ``coarse_steps`` and return the centres of the cells
        (on a ``coarse_point_resolution`` grid) where its alpha exceeds the threshold."""
        cfg = self.config
        device = self.background.device
        shared = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(MarchedFieldConfig)}
        shared.update(
            aabb=tuple(self.field.aabb.tolist()),
            init_scale=0.1,
            occupancy_init="none",
            upsample_steps=(),  # one grid, no schedule: the stage is short
            alpha_mask_steps=(),
            mlp_width=cfg.coarse_mlp_width,  # a small head, no encodings: only geometry counts
            feature_pe=0,
            view_pe=0,
        )
        coarse_config = TensoRFModelConfig(
            **shared,
            density_components=8,
            appearance_components=24,
            voxels_init=cfg.coarse_voxels,
            voxels_final=cfg.coarse_voxels,
        )
        coarse = TensoRFModel(coarse_config).to(device)
        if self.hull.numel() > 0:  # carved: march the hull only
            coarse.occupancy, coarse.occupancy_aabb = self.hull.clone(), self.hull_aabb.clone()
        optimizer = torch.optim.Adam(coarse.param_groups(), betas=(0.9, 0.99))
        start = time.perf_counter()
        columns = (TextColumn("coarse geometry"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeRemainingColumn(), transient=True) as progress:
            task = progress.add_task("coarse", total=cfg.coarse_steps)
            for step in range(cfg.coarse_steps):
                batch = datamanager.next_batch().to(device)
                output = coarse.render_batch(batch, training=True)
                loss = coarse.loss(output, batch.target, step)["loss"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                progress.advance(task)
        resolution = (cfg.coarse_point_resolution,) * 3
        centres = cell_centers(self.field.aabb, resolution).reshape(-1, 3)
        keep = coarse.step_alpha(centres) > cfg.coarse_alpha_threshold
        if self.hull.numel() > 0:  # nothing outside the visual hull
            keep &= query_occupancy(centres, self.hull, self.hull_aabb)
        points = centres[keep]
        seconds = time.perf_counter() - start
        print(f"Coarse geometry: {cfg.coarse_steps} steps in {seconds:.0f} s, loss {loss:.4f}")
        if points.shape[0] == 0 and self.hull.numel() > 0:
            # Too short a stage to reach the threshold anywhere: the visual hull is the next
            # best guess of where the scene is.
            print("Coarse geometry: no cell above the threshold; placing around the visual hull")
            hull_centres = cell_centers(self.hull_aabb, tuple(self.hull.shape)).reshape(-1, 3)
            points = hull_centres[self.hull.reshape(-1)]
        return points

    @torch.no_grad()
    def occupancy_from_coverage(self, chunk: int = 2**18) -> None:
        """Occupancy grid = cells the tensors cover (dilated once; inside the hull if carved)."""
        resolution, aabb, centres = self.mask_cells()
        covered = torch.cat(
            [self.field.coverage(centres[i : i + chunk]) for i in range(0, len(centres), chunk)]
        )
        if self.hull.numel() > 0:
            covered &= query_occupancy(centres, self.hull, self.hull_aabb)
        self.occupancy = dilate(covered.reshape(resolution))
        self.occupancy_aabb = aabb

    # -- training ---------------------------------------------------------------------------------
    def upsample(self, step: int) -> bool:
        if step not in self.upsample_nodes:
            return False
        self.field.set_nodes(self.upsample_nodes[step])
        return True

    def density_l1(self) -> Tensor:
        # Official: sum over scales and axes of the mean |density line|.
        lines = [p for p in self.field.density_lines if p.numel() > 0]
        return sum(p.abs().mean(dim=(1, 2, 3)).sum() for p in lines)

    def progress_info(self) -> str:
        return "tensors " + "/".join(str(n) for n in self.field.counts)
