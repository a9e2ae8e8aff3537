"""Per-op time of the core ops, PyTorch reference vs native, forward and backward, on CPU.

Run by hand (not by CI): ``python benchmarks/ops.py [--threads 2] [--rays 4096]``. Prints one
markdown table. The native extension is built on first use (about a minute) and cached.

Points lie along random chords of the [-1, 1]^3 box, the samples of a ray consecutive as the
renderer emits them (uniformly random points would understate cache locality). Timings are
medians of ``--repeats`` runs after one warm-up, through the public ``vm_interp``/``cp_interp``
with ``TF_BACKEND`` switching the implementation; backward is ``autograd.grad`` of all factors
for a fixed forward graph.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch

from tensorfields.core.interp import cp_interp, vm_interp
from tensorfields.core.native import load_native

HEADER = (
    "| op | C | grid | fwd torch ms | fwd native ms | fwd speed-up "
    "| bwd torch ms | bwd native ms | bwd speed-up |\n|---|---|---|---|---|---|---|---|---|"
)


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: allocator, first touch of the factors, OpenMP pool
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def _fwd_bwd_ms(
    op: Callable[[], torch.Tensor], factors: list[torch.Tensor], backend: str, repeats: int
) -> tuple[float, float]:
    os.environ["TF_BACKEND"] = backend
    forward = _median_ms(op, repeats)
    out = op()
    grad = torch.randn_like(out)
    backward = _median_ms(
        lambda: torch.autograd.grad(out, factors, grad, retain_graph=True), repeats
    )
    return forward, backward


def ray_points(rays: int, samples: int, gen: torch.Generator) -> torch.Tensor:
    start = torch.rand(rays, 1, 3, generator=gen) * 2 - 1
    end = torch.rand(rays, 1, 3, generator=gen) * 2 - 1
    t = torch.linspace(0, 1, samples)[None, :, None]
    return (start + t * (end - start)).reshape(-1, 3).contiguous()


def rows_for(components: int, size: int, xyz: torch.Tensor, repeats: int) -> list[str]:
    gen = torch.Generator().manual_seed(1)

    def factor(h: int, w: int) -> torch.Tensor:
        return (0.1 * torch.randn(1, components, h, w, generator=gen)).requires_grad_()

    planes = [factor(size, size) for _ in range(3)]
    lines = [factor(size, 1) for _ in range(3)]
    cases = [
        ("vm", f"{size}x{size}", lambda: vm_interp(xyz, planes, lines), planes + lines),
        ("cp", f"{size}", lambda: cp_interp(xyz, lines), lines),
    ]
    rows = []
    for name, grid, op, factors in cases:
        ref = _fwd_bwd_ms(op, factors, "torch", repeats)
        nat = _fwd_bwd_ms(op, factors, "native", repeats)
        rows.append(
            f"| {name} | {components} | {grid} | {ref[0]:.1f} | {nat[0]:.1f} | "
            f"{ref[0] / nat[0]:.1f}x | {ref[1]:.1f} | {nat[1]:.1f} | {ref[1] / nat[1]:.1f}x |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rays", type=int, default=4096)
    parser.add_argument("--samples", type=int, default=64, help="samples per ray")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if load_native() is None:
        raise SystemExit("native ops could not be built; nothing to compare")
    xyz = ray_points(args.rays, args.samples, torch.Generator().manual_seed(0))
    print(
        f"{args.rays} rays x {args.samples} samples = {xyz.shape[0]} points, CPU, "
        f"{args.threads} threads, float32, torch {torch.__version__}, median of {args.repeats}\n"
    )
    print(HEADER, flush=True)
    previous = os.environ.get("TF_BACKEND")
    try:
        for components in (16, 48):
            for size in (128, 300):
                print("\n".join(rows_for(components, size, xyz, args.repeats)), flush=True)
    finally:
        if previous is None:
            os.environ.pop("TF_BACKEND", None)
        else:
            os.environ["TF_BACKEND"] = previous


if __name__ == "__main__":
    main()
