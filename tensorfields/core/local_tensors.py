"""Local tensors (Strivec): which small cubes cover a point, and their CP features there.

A scale holds ``N`` axis-aligned cubes of half-extent ``R`` around ``centres``. A point is
covered by a cube when it lies inside it (max-norm distance to the centre <= R). The
:class:`TensorIndex` is a uniform grid over a box whose cells list the cubes overlapping them,
so the top-K lookup reads a handful of candidates instead of scanning every cube;
:func:`covering_tensors_brute` is the scan, kept as the reference. :func:`local_cp_mix` reads
the cubes' CP factors (native where built; its twin is ``local_cp_mix_torch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor
from torch.autograd.function import once_differentiable

from tensorfields.core._torch_impl import cell_indices, local_cp_features, local_cp_mix_torch
from tensorfields.core.native import ops_for

__all__ = [
    "LocalScale",
    "TensorIndex",
    "build_tensor_index",
    "covering_tensors",
    "covering_tensors_brute",
    "covering_tensors_torch",
    "is_covered",
    "local_cp_features",
    "local_cp_mix",
    "local_cp_sums",
]

# Inverse-distance weights 1 / (d + eps), as in the official code.
IDW_EPS = 1e-6
# The native lookup keeps each point's list on the stack (cuda/covering_job.h).
MAX_NATIVE_K = 16


@dataclass(frozen=True)
class TensorIndex:
    """Cells of a uniform grid over ``aabb`` -> ids of the cubes overlapping them.

    ``cell_slot[cell]`` is a row of ``table`` (-1: no cube there); each row lists up to
    ``table.shape[1]`` cube ids, padded with -1. Only cells that some cube touches get a row.
    """

    aabb: Float[Tensor, "6"]
    resolution: tuple[int, int, int]
    cell_slot: Int[Tensor, " cells"]
    table: Int[Tensor, "slots c"]


class LocalScale(NamedTuple):
    """One scale of cubes as a density pass reads it: where they are, how far they reach, their
    index and their (density) lines."""

    centres: Float[Tensor, "m 3"]
    half_extent: float
    index: TensorIndex
    lines: Float[Tensor, "3 m l r"]


def build_tensor_index(
    centres: Float[Tensor, "n 3"], half_extent: float, cell_size: float
) -> TensorIndex:
    """Index the cubes ``centres +- half_extent`` on a grid of ``cell_size`` cells over their
    bounding box (points outside it are covered by no cube)."""
    if cell_size <= 0 or half_extent <= 0:
        raise ValueError(f"cell_size and half_extent must be > 0, got {cell_size}, {half_extent}")
    device = centres.device
    if centres.shape[0] == 0:
        aabb = torch.tensor([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], device=device, dtype=centres.dtype)
    else:
        aabb = torch.cat([centres.amin(0) - half_extent, centres.amax(0) + half_extent])
    extent = aabb[3:] - aabb[:3]
    res = torch.clamp(torch.ceil(extent / cell_size), min=1).long()
    resolution = tuple(int(r) for r in res.tolist())
    cells = resolution[0] * resolution[1] * resolution[2]
    unit = extent / res
    # Cell range each cube overlaps (inclusive), clipped to the grid.
    lo = torch.floor((centres - half_extent - aabb[:3]) / unit).long()
    hi = torch.floor((centres + half_extent - aabb[:3]) / unit).long()
    lo, hi = torch.maximum(lo, torch.zeros_like(lo)), torch.minimum(hi, res - 1)
    span = int((hi - lo + 1).clamp(min=0).max()) if centres.shape[0] else 0
    if span == 0:
        empty = torch.full((cells,), -1, dtype=torch.long, device=device)
        none = torch.zeros(0, 1, dtype=torch.long, device=device)
        return TensorIndex(aabb, resolution, empty, none)
    steps = torch.arange(span, device=device)
    offsets = torch.stack(torch.meshgrid(steps, steps, steps, indexing="ij"), -1).reshape(-1, 3)
    ijk = lo[:, None, :] + offsets[None]  # (n, span^3, 3)
    valid = (ijk <= hi[:, None, :]).all(-1)
    ids = torch.arange(centres.shape[0], device=device)[:, None].expand_as(valid)[valid]
    ijk = ijk[valid]
    flat = (ijk[:, 0] * resolution[1] + ijk[:, 1]) * resolution[2] + ijk[:, 2]
    # Group (cell, cube) pairs by cell; each cell's row takes its cubes in id order.
    order = torch.argsort(flat * centres.shape[0] + ids)
    flat, ids = flat[order], ids[order]
    used, counts = torch.unique_consecutive(flat, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    slot_of_pair = torch.repeat_interleave(torch.arange(used.numel(), device=device), counts)
    column = torch.arange(flat.numel(), device=device) - starts[slot_of_pair]
    table = torch.full((used.numel(), int(counts.max())), -1, dtype=torch.long, device=device)
    table[slot_of_pair, column] = ids
    cell_slot = torch.full((cells,), -1, dtype=torch.long, device=device)
    cell_slot[used] = torch.arange(used.numel(), device=device)
    return TensorIndex(aabb, resolution, cell_slot, table)


def _nearest_covering(
    xyz: Float[Tensor, "n 3"],
    candidates: Int[Tensor, "n c"],
    centres: Float[Tensor, "m 3"],
    half_extent: float,
    k: int,
) -> tuple[Int[Tensor, "n k"], Float[Tensor, "n k"]]:
    """Among ``candidates`` (-1: none), the ``k`` nearest cubes covering each point."""
    n, c = candidates.shape
    if centres.shape[0] == 0:  # no cubes: nothing covers anything
        none = torch.full((n, k), -1, dtype=torch.long, device=xyz.device)
        return none, torch.zeros(n, k, dtype=xyz.dtype, device=xyz.device)
    safe = candidates.clamp(min=0)
    offset = xyz[:, None, :] - centres[safe]  # (n, c, 3)
    inside = (offset.abs() <= half_extent).all(-1) & (candidates >= 0)
    distance = offset.norm(dim=-1).masked_fill(~inside, float("inf"))
    if c < k:  # pad, so topk always has k columns
        pad = torch.full((n, k - c), float("inf"), dtype=xyz.dtype, device=xyz.device)
        distance = torch.cat([distance, pad], 1)
        safe = torch.cat([safe, torch.zeros(n, k - c, dtype=safe.dtype, device=safe.device)], 1)
    nearest, column = torch.topk(distance, k, dim=1, largest=False)
    found = torch.isfinite(nearest)
    ids = torch.where(found, safe.gather(1, column), torch.full_like(column, -1))
    weights = 1.0 / (nearest + IDW_EPS)  # 0 where none was found (1 / inf)
    total = weights.sum(1, keepdim=True)
    return ids, weights / total.clamp(min=1e-30)


def _candidates(xyz: Float[Tensor, "n 3"], index: TensorIndex) -> Int[Tensor, "n c"]:
    """The cubes listed for each point's cell (-1 padding; all -1 outside the grid)."""
    flat, inside = cell_indices(xyz, index.aabb, index.resolution)
    slot = torch.where(inside, index.cell_slot[flat], torch.full_like(flat, -1))
    if index.table.shape[0] == 0:
        return torch.full((xyz.shape[0], 1), -1, dtype=torch.long, device=xyz.device)
    rows = index.table.to(xyz.device)[slot.clamp(min=0)]
    return torch.where(slot[:, None] >= 0, rows, torch.full_like(rows, -1))


def covering_tensors(
    xyz: Float[Tensor, "n 3"],
    centres: Float[Tensor, "m 3"],
    half_extent: float,
    index: TensorIndex,
    k: int = 4,
) -> tuple[Int[Tensor, "n k"], Float[Tensor, "n k"]]:
    """The ``k`` cubes nearest to each point among those covering it (id -1: none), in
    ascending distance, and their normalised inverse-distance weights ``1 / (d + 1e-6)`` (0 for
    none). Native (``cuda/covering.*``) where built, else :func:`covering_tensors_torch`."""
    ops = ops_for([xyz, centres, index.aabb], no_grad=[xyz, centres])
    if ops is None or not 1 <= k <= MAX_NATIVE_K:
        return covering_tensors_torch(xyz, centres, half_extent, index, k)
    device = xyz.device
    ids, weights = ops.covering_tensors(
        xyz,
        centres,
        half_extent,
        index.aabb,
        list(index.resolution),
        index.cell_slot.to(device),
        index.table.to(device),
        k,
        IDW_EPS,
    )
    return ids, weights


def covering_tensors_torch(
    xyz: Float[Tensor, "n 3"],
    centres: Float[Tensor, "m 3"],
    half_extent: float,
    index: TensorIndex,
    k: int = 4,
) -> tuple[Int[Tensor, "n k"], Float[Tensor, "n k"]]:
    """PyTorch twin of :func:`covering_tensors` (same signature, same result)."""
    return _nearest_covering(xyz, _candidates(xyz, index), centres, half_extent, k)


def is_covered(
    xyz: Float[Tensor, "n 3"], centres: Float[Tensor, "m 3"], half_extent: float, index: TensorIndex
) -> Bool[Tensor, " n"]:
    """Whether some cube covers each point (no distances, no sorting)."""
    candidates = _candidates(xyz, index)
    if centres.shape[0] == 0:
        return torch.zeros(xyz.shape[0], dtype=torch.bool, device=xyz.device)
    offset = (xyz[:, None, :] - centres[candidates.clamp(min=0)]).abs().amax(-1)
    return ((offset <= half_extent) & (candidates >= 0)).any(1)


def covering_tensors_brute(
    xyz: Float[Tensor, "n 3"], centres: Float[Tensor, "m 3"], half_extent: float, k: int = 4
) -> tuple[Int[Tensor, "n k"], Float[Tensor, "n k"]]:
    """Reference of :func:`covering_tensors`: every cube is a candidate of every point."""
    everyone = torch.arange(centres.shape[0], device=xyz.device).expand(xyz.shape[0], -1)
    if centres.shape[0] == 0:
        everyone = torch.full((xyz.shape[0], 1), -1, dtype=torch.long, device=xyz.device)
    return _nearest_covering(xyz, everyone, centres, half_extent, k)


class _LocalCPMix(torch.autograd.Function):
    """Native local CP mix; gradients for the lines only (positions and weights are fixed)."""

    @staticmethod
    def forward(ctx, ops, xyz, ids, weights, centres, half_extent, lines):
        lines = lines.detach().contiguous()
        ctx.ops, ctx.half_extent = ops, half_extent
        ctx.save_for_backward(xyz, ids, weights, centres, lines)
        return ops.local_cp_mix_fwd(xyz, ids, weights, centres, half_extent, lines)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        xyz, ids, weights, centres, lines = ctx.saved_tensors
        grad = ctx.ops.local_cp_mix_bwd(
            grad_out.contiguous(), xyz, ids, weights, centres, ctx.half_extent, lines
        )
        return None, None, None, None, None, None, grad


def local_cp_mix(
    xyz: Float[Tensor, "n 3"],
    ids: Int[Tensor, "n k"],
    weights: Float[Tensor, "n k"],
    centres: Float[Tensor, "m 3"],
    half_extent: float,
    lines: Float[Tensor, "3 m l r"],
) -> Float[Tensor, "n r"]:
    """Per point, ``sum_k weights[:, k] *`` the CP products of cube ``ids[:, k]`` (-1: none);
    native (``cuda/local_cp.*``) where built, else :func:`local_cp_mix_torch`."""
    ops = ops_for([xyz, weights, centres, lines], no_grad=[xyz, weights, centres])
    if ops is None:
        return local_cp_mix_torch(xyz, ids, weights, centres, half_extent, lines)
    return _LocalCPMix.apply(ops, xyz, ids, weights, centres, half_extent, lines)


class _LocalCPSums(torch.autograd.Function):
    """Native sum over parts of the mixes' component sums (the summed native mode: no (n, r)
    blocks); ``value``, when given, is that result from an earlier no-grad pass and is returned
    instead, so only the backward runs."""

    @staticmethod
    def forward(ctx, ops, value, xyz, parts, *lines):
        lines = [line.detach().contiguous() for line in lines]
        ctx.ops, ctx.parts = ops, [(ids, w, c, half) for ids, w, c, half, _ in parts]
        ctx.save_for_backward(xyz, *lines)
        if value is not None:
            return value.detach().clone()
        total = xyz.new_zeros(xyz.shape[0])
        for (ids, weights, centres, half), part_lines in zip(ctx.parts, lines, strict=True):
            total += ops.local_cp_mix_fwd(xyz, ids, weights, centres, half, part_lines, True)
        return total

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        xyz, *lines = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        grads = [
            ctx.ops.local_cp_mix_bwd(grad_out, xyz, ids, weights, centres, half, part_lines)
            for (ids, weights, centres, half), part_lines in zip(ctx.parts, lines, strict=True)
        ]
        return None, None, None, None, *grads


def local_cp_sums(
    xyz: Float[Tensor, "n 3"],
    parts: list[tuple[Tensor, Tensor, Tensor, float, Tensor]],
    value: Float[Tensor, " n"] | None = None,
) -> Float[Tensor, " n"]:
    """``sum over parts of local_cp_mix(xyz, *part).sum(1)``, each part ``(ids, weights,
    centres, half_extent, lines)`` (a Strivec density: every scale's components summed).

    ``value``: this result for these points from an earlier no-grad pass (the renderer's);
    the native path returns it and runs only the backward, as the VM lookups do (the reference
    recomputes it).
    """
    floats = [xyz] + ([] if value is None else [value])
    floats += [t for _, w, c, _, lines in parts for t in (w, c, lines)]
    no_grad = [xyz] + [t for _, w, c, _, _ in parts for t in (w, c)]
    ops = ops_for(floats, no_grad=no_grad) if parts else None
    if ops is None:
        total = xyz.new_zeros(xyz.shape[0])
        for part in parts:
            total = total + local_cp_mix_torch(xyz, *part).sum(1)
        return total
    if value is not None and value.shape != (xyz.shape[0],):
        raise ValueError(f"value must be ({xyz.shape[0]},), got {tuple(value.shape)}")
    return _LocalCPSums.apply(ops, value, xyz, parts, *[part[4] for part in parts])
