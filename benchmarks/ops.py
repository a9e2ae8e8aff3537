"""Per-op time of the core ops, PyTorch reference vs native, forward and backward.

Run by hand (not by CI): ``python benchmarks/ops.py [--threads 2] [--rays 4096] [--device cuda]``.
Prints one markdown table. The native extension is built on first use (minutes) and cached.

Marching, compositing and the occupancy update run on a ball-shaped scene: rays through a
256^3 bitfield grid occupied in a shell, compositing over the packed samples marching emits.

Points lie along random chords of the [-1, 1]^3 box, the samples of a ray consecutive as the
renderer emits them (uniformly random points would understate cache locality). Timings are
medians of ``--repeats`` runs after one warm-up, through the public ops (``vm_interp``,
``vm_project``, ``cp_interp``, ...) with ``TF_BACKEND`` switching the implementation; backward
is ``autograd.grad`` of all factors for a fixed forward graph. ``vm density + T`` is the
no-grad density pass of a training render (summed VM density and transmittance, each ray
stopping where it turns opaque; the reference runs every sample); ``local_cp density + T``
is Strivec's (three scales of cubes around a shell: covering lookup, density mix, the same
early stop).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from tensorfields.core.encoding import shading_input
from tensorfields.core.interp import cp_interp, vm_interp, vm_project
from tensorfields.core.local_tensors import (
    LocalScale,
    build_tensor_index,
    covering_tensors,
    is_covered,
    local_cp_mix,
)
from tensorfields.core.native import load_native
from tensorfields.core.occupancy import OccupancyGrid, cell_centers, occupancy_bits
from tensorfields.core.opaque import local_cp_density_transmittance, vm_density_transmittance
from tensorfields.core.rays import ray_aabb_intersect
from tensorfields.core.render import render_transmittance
from tensorfields.core.sampling import march_rays
from tensorfields.pipeline.host_allocator import keep_freed_memory
from tensorfields.representations.placement import voxel_means

HEADER = (
    "| op | C or size | grid | fwd torch ms | fwd native ms | fwd speed-up "
    "| bwd torch ms | bwd native ms | bwd speed-up |\n|---|---|---|---|---|---|---|---|---|"
)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: allocator, first touch of the factors, OpenMP pool
    times = []
    for _ in range(repeats):
        _sync()
        start = time.perf_counter()
        fn()
        _sync()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _fwd_bwd_ms(
    op: Callable[[], torch.Tensor], inputs: list[torch.Tensor], backend: str, repeats: int
) -> tuple[float, float | None]:
    """Forward and (when ``inputs`` need gradients) backward time of ``op`` on a backend."""
    os.environ["TF_BACKEND"] = backend
    forward = _median_ms(op, repeats)
    if not inputs:
        return forward, None
    out = op()
    grad = torch.randn_like(out)
    backward = _median_ms(
        lambda: torch.autograd.grad(out, inputs, grad, retain_graph=True), repeats
    )
    return forward, backward


def _row(name: str, size: str, grid: str, op, inputs, repeats: int) -> str:
    ref = _fwd_bwd_ms(op, inputs, "torch", repeats)
    nat = _fwd_bwd_ms(op, inputs, "native", repeats)
    cells = [name, size, grid, f"{ref[0]:.1f}", f"{nat[0]:.1f}", f"{ref[0] / nat[0]:.1f}x"]
    if ref[1] is None:
        cells += ["-", "-", "-"]
    else:
        cells += [f"{ref[1]:.1f}", f"{nat[1]:.1f}", f"{ref[1] / nat[1]:.1f}x"]
    return "| " + " | ".join(cells) + " |"


def ray_points(rays: int, samples: int, gen: torch.Generator) -> torch.Tensor:
    start = torch.rand(rays, 1, 3, generator=gen) * 2 - 1
    end = torch.rand(rays, 1, 3, generator=gen) * 2 - 1
    t = torch.linspace(0, 1, samples)[None, :, None]
    return (start + t * (end - start)).reshape(-1, 3).contiguous()


def _density_pass(xyz: torch.Tensor, samples: int) -> tuple:
    """The packed-sample arguments of a no-grad density pass over ``ray_points`` (shift 0,
    density scale 25, stop at T < 1e-4)."""
    rays = xyz.shape[0] // samples
    chord = xyz.view(rays, samples, 3)
    dt = (chord[:, 1] - chord[:, 0]).norm(dim=-1, keepdim=True).expand(rays, samples)
    t_starts = (torch.arange(samples, device=xyz.device) * dt).reshape(-1)
    t_ends = t_starts + dt.reshape(-1)
    ray_indices = torch.arange(rays, device=xyz.device).repeat_interleave(samples)
    return t_starts, t_ends, ray_indices, rays, 0.0, 25.0, 1e-4


def rows_for(
    components: int, size: int, xyz: torch.Tensor, samples: int, repeats: int
) -> list[str]:
    gen = torch.Generator().manual_seed(1)

    def factor(h: int, w: int) -> torch.Tensor:
        f = 0.1 * torch.randn(1, components, h, w, generator=gen)
        return f.to(xyz.device).contiguous(memory_format=torch.channels_last).requires_grad_()

    planes = [factor(size, size) for _ in range(3)]
    lines = [factor(size, 1) for _ in range(3)]
    # TensoRF's appearance basis_mat: (27, 3C)
    basis = (0.1 * torch.randn(27, 3 * components, generator=gen)).to(xyz.device).requires_grad_()
    # softplus(v) * 25 on these factors: rays turn opaque after about 20 of 64 samples.
    density_pass = _density_pass(xyz, samples)
    return [
        _row("vm", str(components), f"{size}x{size}", lambda: vm_interp(xyz, planes, lines),
             planes + lines, repeats),
        _row("vm + basis", f"{components} -> 27", f"{size}x{size}",
             lambda: vm_project(xyz, planes, lines, basis), [*planes, *lines, basis], repeats),
        _row("cp", str(components), str(size), lambda: cp_interp(xyz, lines), lines, repeats),
        _row("vm density + T", str(components), f"{size}x{size}",
             lambda: vm_density_transmittance(xyz, planes, lines, *density_pass)[1], [], repeats),
    ]  # fmt: skip


def rendering_rows(rays: int, device: torch.device, repeats: int) -> list[str]:
    """Ray/box, marching, compositing and occupancy update on a shell-shaped scene."""
    gen = torch.Generator().manual_seed(2)
    aabb = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], device=device)
    origins = (torch.randn(rays, 3, generator=gen) * 0.1 + torch.tensor([0.0, 0.0, 4.0])).to(device)
    targets = (torch.rand(rays, 3, generator=gen) * 1.6 - 0.8).to(device)
    directions = torch.nn.functional.normalize(targets - origins, dim=-1)
    res = (256, 256, 256)
    radius = cell_centers(aabb, res).norm(dim=-1)
    alpha = ((radius > 0.6) & (radius < 0.8)).float()  # a shell of matter
    grid = OccupancyGrid(occupancy_bits(alpha, 0.5), res, aabb)
    t_min, t_max = ray_aabb_intersect(origins, directions, aabb, 0.0, 10.0)
    offsets = torch.rand(rays, generator=gen).to(device)
    step = 2.0 * 3**0.5 / 1024  # about TensoRF's step (half a voxel of a 300^3 grid)
    ray_indices, t_starts, t_ends = march_rays(
        origins, directions, t_min, t_max, step, offsets, grid
    )
    sigmas = (20 * torch.rand(ray_indices.numel(), generator=gen)).to(device).requires_grad_()
    samples = f"{ray_indices.numel()} samples"
    return [
        _row("ray_aabb", f"{rays} rays", "-",
             lambda: ray_aabb_intersect(origins, directions, aabb, 0.0, 10.0), [], repeats),
        _row("march", f"{rays} rays", "256^3 bits",
             lambda: march_rays(origins, directions, t_min, t_max, step, offsets, grid), [],
             repeats),
        _row("composite", samples, "-",
             lambda: render_transmittance(sigmas, t_starts, t_ends, ray_indices, rays)[0],
             [sigmas], repeats),
        _row("occupancy", "-", "256^3", lambda: occupancy_bits(alpha, 0.5), [], repeats),
    ]  # fmt: skip


def local_cp_rows(xyz: torch.Tensor, samples: int, repeats: int) -> list[str]:
    """Strivec's covering-cube lookup and mix at its finest lego scale: ~1100 cubes (0.1
    voxels of a shell of points), half-extent 0.075, lines of 32 nodes, up to 4 cubes a point;
    and its density pass over the three lego scales (0.4 / 0.2 / 0.1 voxels, ranks 32 / 24 /
    16)."""
    gen = torch.Generator().manual_seed(3)
    shell = torch.nn.functional.normalize(torch.randn(20000, 3, generator=gen), dim=-1) * 0.8
    scales = []
    for voxel, half, rank, nodes in (
        (0.4, 0.3, 32, 122),
        (0.2, 0.15, 24, 62),
        (0.1, 0.075, 16, 32),
    ):
        centres = voxel_means(shell, voxel).to(xyz.device)
        lines = (0.2 * torch.randn(3, len(centres), nodes, rank, generator=gen)).to(xyz.device)
        scales.append(LocalScale(centres, half, build_tensor_index(centres, half, half), lines))
    centres, half, index, _ = scales[-1]
    points = xyz[is_covered(xyz, centres, half, index)]
    ids, weights = covering_tensors(points, centres, half, index, 4)
    rows = [
        _row("covering", "k=4", f"{len(centres)} cubes, {len(xyz)} pts",
             lambda: covering_tensors(xyz, centres, half, index, 4)[1], [], repeats)
    ]  # fmt: skip
    for rank in (16, 48):
        lines = (0.2 * torch.randn(3, len(centres), 32, rank, generator=gen)).to(xyz.device)
        lines.requires_grad_()
        rows.append(
            _row("local_cp", str(rank), f"{len(centres)} cubes, {len(points)} pts",
                 lambda lines=lines: local_cp_mix(points, ids, weights, centres, half, lines),
                 [lines], repeats)
        )  # fmt: skip
    counts = "/".join(str(len(s.centres)) for s in scales)
    density_pass = _density_pass(xyz, samples)
    rows.append(
        _row("local_cp density + T", "32/24/16", f"{counts} cubes, {len(xyz)} pts",
             lambda: local_cp_density_transmittance(xyz, scales, 4, *density_pass)[1], [],
             repeats)
    )  # fmt: skip
    return rows


def encoding_rows(device: torch.device, repeats: int) -> list[str]:
    """The shading MLP's input at a lego step's size: 78k shaded samples, 27 features."""
    gen = torch.Generator().manual_seed(4)
    features = torch.randn(78_000, 27, generator=gen).to(device).requires_grad_()
    dirs = torch.nn.functional.normalize(torch.randn(78_000, 3, generator=gen), dim=-1).to(device)
    dtypes = [None, torch.bfloat16] if device.type == "cpu" else [None]  # bf16: the MLP's input
    return [
        _row("encoding" + (" bf16" if dtype else ""), "27 + 3", "78000 rows",
             lambda dtype=dtype: shading_input(features, dirs, 2, 2, dtype), [features], repeats)
        for dtype in dtypes
    ]  # fmt: skip


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rays", type=int, default=4096)
    parser.add_argument("--samples", type=int, default=64, help="samples per ray")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if load_native() is None:
        raise SystemExit("native ops could not be built; nothing to compare")
    xyz = ray_points(args.rays, args.samples, torch.Generator().manual_seed(0)).to(device)
    where = f"CPU, {args.threads} threads" if device.type == "cpu" else "CUDA"
    print(
        f"{args.rays} rays x {args.samples} samples = {xyz.shape[0]} points for the lookups, "
        f"{where}, float32, torch {torch.__version__}, median of {args.repeats}\n"
    )
    print(HEADER, flush=True)
    previous = os.environ.get("TF_BACKEND")
    try:
        print("\n".join(rendering_rows(args.rays, device, args.repeats)), flush=True)
        for components in (16, 48):
            for size in (128, 300):
                print(
                    "\n".join(rows_for(components, size, xyz, args.samples, args.repeats)),
                    flush=True,
                )
        print("\n".join(local_cp_rows(xyz, args.samples, args.repeats)), flush=True)
        print("\n".join(encoding_rows(device, args.repeats)), flush=True)
    finally:
        if previous is None:
            os.environ.pop("TF_BACKEND", None)
        else:
            os.environ["TF_BACKEND"] = previous


if __name__ == "__main__":
    main()
