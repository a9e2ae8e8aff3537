"""Gaussian rasterization on the CPU at 400x400: forward + backward, native vs the reference.

Run by hand: ``python benchmarks/raster_cpu.py [--threads 2] [--counts 10000 50000 200000]``.
Prints one markdown table. Gaussians fill the [-1, 1]^3 box seen from 4 units away with lego's
400x400 intrinsics (f = 555.6), standard deviations log-uniform in [0.005, 0.03] (1-4 px), opacity
uniform in [0.1, 1], degree-3 SH colours: a lego-like load. Timed: the whole
``rasterize_gaussians`` call (projection, SH, binning, compositing) and the backward of a
random linear function of its image to every Gaussian parameter. Native: medians of
``--repeats`` runs after a warm-up; the reference: one run (seconds each), none above
``--reference-max``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch

from tensorfields.core.native import load_native
from tensorfields.core.rasterize import rasterize_gaussians
from tensorfields.pipeline.host_allocator import keep_freed_memory

SIZE, FOCAL = 400, 555.555


def scene(count: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(count, 3, generator=g) * 2 - 1
    quats = torch.randn(count, 4, generator=g)
    log_sd = torch.rand(count, 3, generator=g) * math.log(6.0) + math.log(0.005)
    scales = log_sd.exp()
    opacities = torch.rand(count, generator=g) * 0.9 + 0.1
    sh = torch.randn(count, 16, 3, generator=g) * 0.3
    return [t.requires_grad_() for t in (means, quats, scales, opacities, sh)]


def camera() -> tuple[torch.Tensor, torch.Tensor]:
    viewmat = torch.eye(4)
    viewmat[2, 3] = 4.0  # the camera 4 units behind the box centre, looking down +z
    K = torch.tensor([[FOCAL, 0, SIZE / 2], [0, FOCAL, SIZE / 2], [0, 0, 1]])
    return viewmat[None], K[None]


def time_backend(
    params, backend: str, repeats: int, warm_up: bool = True
) -> tuple[float, float, int]:
    os.environ["TF_BACKEND"] = backend
    viewmats, Ks = camera()
    weights = torch.randn(1, SIZE, SIZE, 3, generator=torch.Generator().manual_seed(1))

    def forward():
        return rasterize_gaussians(
            *params, viewmats, Ks, SIZE, SIZE, sh_degree=3, background=torch.ones(3)
        )

    fwd, bwd = [], []
    out = forward() if warm_up else None
    for _ in range(repeats):
        start = time.perf_counter()
        out = forward()
        fwd.append(time.perf_counter() - start)
        start = time.perf_counter()
        torch.autograd.grad((out.rgb * weights).sum(), params)
        bwd.append(time.perf_counter() - start)
    drawn = int((out.info["radii"] > 0).all(-1).sum())
    return 1000 * statistics.median(fwd), 1000 * statistics.median(bwd), drawn


def main() -> None:
    keep_freed_memory()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--counts", type=int, nargs="+", default=[10_000, 50_000, 200_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--reference-max", type=int, default=200_000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if load_native() is None:
        raise SystemExit("the native extension did not build; nothing to compare")
    print(f"400x400, {args.threads} threads; native: median of {args.repeats}, reference: 1 run")
    print(
        "| Gaussians | drawn | fwd torch ms | fwd native ms | speed-up | bwd torch ms "
        "| bwd native ms | speed-up |\n|---|---|---|---|---|---|---|---|"
    )
    for count in args.counts:
        params = scene(count)
        nat_fwd, nat_bwd, drawn = time_backend(params, "native", args.repeats)
        ref = ["not timed"] * 4
        if count <= args.reference_max:
            # seconds to minutes a run: one run, no warm-up, is enough
            ref_fwd, ref_bwd, _ = time_backend(params, "torch", 1, warm_up=False)
            ref = [f"{ref_fwd:.0f}", f"{ref_fwd / nat_fwd:.1f}x"]
            ref += [f"{ref_bwd:.0f}", f"{ref_bwd / nat_bwd:.1f}x"]
        row = [count, drawn, ref[0], f"{nat_fwd:.0f}", ref[1], ref[2], f"{nat_bwd:.0f}", ref[3]]
        print("| " + " | ".join(str(v) for v in row) + " |", flush=True)


if __name__ == "__main__":
    main()
