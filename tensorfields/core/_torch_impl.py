"""Pure-PyTorch references of the native core: the oracles the native ops are tested against.

Each ``*_torch`` function has the signature of its native twin in ``cuda/`` (reached through the
public function in rays.py, sampling.py, render.py, occupancy.py or interp.py).

Factors are stored as ``(1, C, H, W)`` images (a line is ``(1, C, L, 1)``) and sampled with
``grid_sample(align_corners=True, padding_mode="zeros")``: coordinate -1 is the first grid
node, +1 the last, and nodes outside the grid read as zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from jaxtyping import Bool, Float, Int, UInt8
from torch import Tensor

from tensorfields.core.bitfield import pack_bits, read_bits

# Plane i spans axes PLANE_AXES[i]; line i runs along LINE_AXES[i] (the axis the plane misses).
PLANE_AXES = ((0, 1), (0, 2), (1, 2))
LINE_AXES = (2, 1, 0)


def sample_plane(plane: Float[Tensor, "1 c h w"], uv: Float[Tensor, "n 2"]) -> Float[Tensor, "n c"]:
    """Bilinear lookup: ``uv[:, 0]`` indexes the width axis, ``uv[:, 1]`` the height axis."""
    out = F.grid_sample(plane, uv.view(1, -1, 1, 2), mode="bilinear", align_corners=True)
    # Explicit n (not -1): a view of zero elements cannot infer it.
    return out.view(plane.shape[1], uv.shape[0]).t()


def sample_line(line: Float[Tensor, "1 c l 1"], w: Float[Tensor, " n"]) -> Float[Tensor, "n c"]:
    """Linear lookup along a line stored as a one-pixel-wide image."""
    grid = torch.stack([torch.zeros_like(w), w], dim=-1)
    return sample_plane(line, grid)


def vm_interp_torch(
    xyz: Float[Tensor, "n 3"],
    planes: Sequence[Float[Tensor, "1 c h w"]],
    lines: Sequence[Float[Tensor, "1 c l 1"]],
) -> Float[Tensor, "n 3 c"]:
    """Plane i at ``xyz[:, PLANE_AXES[i]]`` times line i at ``xyz[:, LINE_AXES[i]]``."""
    out = []
    for plane, line, (a, b), c in zip(planes, lines, PLANE_AXES, LINE_AXES, strict=True):
        out.append(sample_plane(plane, xyz[:, [a, b]]) * sample_line(line, xyz[:, c]))
    return torch.stack(out, dim=1)


def vm_project_torch(
    xyz: Float[Tensor, "n 3"],
    planes: Sequence[Float[Tensor, "1 c h w"]],
    lines: Sequence[Float[Tensor, "1 c l 1"]],
    basis: Float[Tensor, "f k"],
) -> Float[Tensor, "n f"]:
    """The VM products through a basis matrix (TensoRF's appearance feature, ``basis_mat``)."""
    return vm_interp_torch(xyz, planes, lines).flatten(1) @ basis.t()


def vm_interp_summed_torch(
    xyz: Float[Tensor, "n 3"],
    planes: Sequence[Float[Tensor, "1 c h w"]],
    lines: Sequence[Float[Tensor, "1 c l 1"]],
) -> Float[Tensor, " n"]:
    """The sum over pairs and components of :func:`vm_interp_torch` (a TensoRF density)."""
    return vm_interp_torch(xyz, planes, lines).sum(dim=(1, 2))


def cp_interp_torch(
    xyz: Float[Tensor, "n 3"], lines: Sequence[Float[Tensor, "1 c l 1"]]
) -> Float[Tensor, "n c"]:
    """Product of the three line lookups, line ``i`` at ``xyz[:, i]``."""
    out = sample_line(lines[0], xyz[:, 0])
    for axis in (1, 2):
        out = out * sample_line(lines[axis], xyz[:, axis])
    return out


def ray_aabb_intersect_torch(
    origins: Float[Tensor, "n 3"],
    directions: Float[Tensor, "n 3"],
    aabb: Float[Tensor, "6"],
    near: float,
    far: float,
) -> tuple[Float[Tensor, " n"], Float[Tensor, " n"]]:
    """Slab test: entry and exit distances through ``aabb``, clamped to ``[near, far]``."""
    # Axis-parallel rays: a tiny direction keeps the slab test finite and gives the right answer.
    safe = torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t_lo = (aabb[:3] - origins) / safe
    t_hi = (aabb[3:] - origins) / safe
    t_min = torch.minimum(t_lo, t_hi).amax(dim=-1).clamp(min=near, max=far)
    t_max = torch.maximum(t_lo, t_hi).amin(dim=-1).clamp(min=near, max=far)
    return t_min, t_max


def cell_indices(
    xyz: Float[Tensor, "n 3"], aabb: Float[Tensor, "6"], resolution: tuple[int, int, int]
) -> tuple[Tensor, Bool[Tensor, " n"]]:
    """Flat index of the grid cell holding each point, and whether the point is inside the box."""
    res = torch.tensor(resolution, device=xyz.device)
    rel = (xyz - aabb[:3]) / (aabb[3:] - aabb[:3])
    inside = ((rel >= 0) & (rel <= 1)).all(dim=-1)
    ijk = (rel * res).long().clamp(min=0)
    ijk = torch.minimum(ijk, res - 1)
    flat = (ijk[:, 0] * resolution[1] + ijk[:, 1]) * resolution[2] + ijk[:, 2]
    return flat, inside


def occupied_at(
    xyz: Float[Tensor, "n 3"],
    bits: UInt8[Tensor, " b"],
    resolution: tuple[int, int, int],
    aabb: Float[Tensor, "6"],
) -> Tensor:
    """Whether each point lies inside ``aabb`` in a set cell of the bitfield."""
    flat, inside = cell_indices(xyz, aabb, resolution)
    return read_bits(bits, flat) & inside


def march_rays_torch(
    origins: Float[Tensor, "n 3"],
    directions: Float[Tensor, "n 3"],
    t_min: Float[Tensor, " n"],
    t_max: Float[Tensor, " n"],
    step_size: float,
    offsets: Float[Tensor, " n"],
    bits: UInt8[Tensor, " b"],
    resolution: tuple[int, int, int],
    aabb: Float[Tensor, "6"],
    max_samples: int,
) -> tuple[Int[Tensor, " s"], Float[Tensor, " s"], Float[Tensor, " s"]]:
    """Fixed steps from ``t_min``; intervals whose midpoint is in an empty cell are dropped.

    Empty ``bits``: no occupancy, every interval is kept. ``max_samples < 0``: no cap. Rays
    with a non-finite span get no samples.
    """
    n = origins.shape[0]
    device = origins.device
    span = (t_max - t_min).clamp(min=0)
    # A tensor divisor: PyTorch's CUDA kernels multiply by the reciprocal of a Python scalar,
    # which rounds differently from the native ops' true division.
    counts = torch.ceil(span / span.new_tensor(step_size) - offsets)
    # A NaN or infinite span would need endless samples: such rays get none.
    counts = torch.where(torch.isfinite(counts), counts, 0).clamp(min=0).long()
    if max_samples >= 0:
        counts = counts.clamp(max=max_samples)
    total = int(counts.sum())
    ray_indices = torch.repeat_interleave(torch.arange(n, device=device), counts)
    # Position of each sample within its ray: global index minus the ray's first index.
    first = torch.cumsum(counts, 0) - counts
    k = torch.arange(total, device=device) - first[ray_indices]
    t_starts = t_min[ray_indices] + (k.to(origins.dtype) + offsets[ray_indices]) * step_size
    t_ends = t_starts + step_size
    if bits.numel() > 0:
        mid = 0.5 * (t_starts + t_ends)
        xyz = origins[ray_indices] + directions[ray_indices] * mid[:, None]
        keep = occupied_at(xyz, bits, resolution, aabb)
        ray_indices, t_starts, t_ends = ray_indices[keep], t_starts[keep], t_ends[keep]
    return ray_indices, t_starts, t_ends


def render_transmittance_torch(
    sigmas: Float[Tensor, " s"],
    t_starts: Float[Tensor, " s"],
    t_ends: Float[Tensor, " s"],
    ray_indices: Int[Tensor, " s"],
    n_rays: int,
    early_stop_eps: float,
) -> tuple[Float[Tensor, " s"], Float[Tensor, " s"]]:
    """Weights ``T_i * alpha_i`` and transmittance ``T_i``; both 0 where ``T_i < early_stop_eps``
    (early ray termination)."""
    if sigmas.numel() == 0:
        return sigmas.clone(), sigmas.clone()
    optical = sigmas * (t_ends - t_starts)
    # Exclusive per-ray cumulative sum; float64 so that long packed sums do not lose precision.
    cumulative = torch.cumsum(optical.double(), 0)
    exclusive = cumulative - optical.double()
    counts = torch.bincount(ray_indices, minlength=n_rays)
    first = torch.cumsum(counts, 0) - counts
    ray_start = exclusive[first.clamp(max=sigmas.numel() - 1)][ray_indices]
    transmittance = torch.exp(-(exclusive - ray_start)).to(sigmas.dtype)
    weights = transmittance * (1.0 - torch.exp(-optical))
    if early_stop_eps > 0:
        alive = transmittance >= early_stop_eps
        weights, transmittance = weights * alive, transmittance * alive
    return weights, transmittance


def vm_density_transmittance_torch(
    xyz: Float[Tensor, "s 3"],
    planes: Sequence[Float[Tensor, "1 c h w"]],
    lines: Sequence[Float[Tensor, "1 c l 1"]],
    t_starts: Float[Tensor, " s"],
    t_ends: Float[Tensor, " s"],
    ray_indices: Int[Tensor, " s"],
    n_rays: int,
    shift: float,
    scale: float,
    eps: float,
) -> tuple[Float[Tensor, " s"], Float[Tensor, " s"]]:
    """Summed VM values ``v`` of packed samples and the transmittance ``T`` in front of each,
    with ``sigma = softplus(v + shift) * scale``; both 0 where ``T < eps`` (the ray is opaque
    there, and the native op never looks those samples up)."""
    value = vm_interp_summed_torch(xyz, planes, lines)
    sigmas = F.softplus(value + shift) * scale
    _, transmittance = render_transmittance_torch(
        sigmas, t_starts, t_ends, ray_indices, n_rays, eps
    )
    if eps > 0:
        value = torch.where(transmittance >= eps, value, torch.zeros_like(value))
    return value, transmittance


def accumulate_along_rays_torch(
    weights: Float[Tensor, " s"],
    values: Float[Tensor, "s c"] | None,
    ray_indices: Int[Tensor, " s"],
    n_rays: int,
) -> Float[Tensor, "n c"]:
    """Sum of ``weights * values`` per ray (of ``weights`` alone when ``values`` is None)."""
    src = weights[:, None] if values is None else weights[:, None] * values
    out = torch.zeros(n_rays, src.shape[1], dtype=src.dtype, device=src.device)
    return out.index_add(0, ray_indices, src)


def occupancy_bits_torch(
    alpha: Float[Tensor, "x y z"], threshold: float, kernel: int
) -> UInt8[Tensor, " b"]:
    """Cells with ``alpha > threshold``, dilated by a ``kernel``^3 max-pool, as a bitfield."""
    return pack_bits(dilate(alpha > threshold, kernel))


def dilate(grid: Bool[Tensor, "x y z"], kernel: int = 3) -> Bool[Tensor, "x y z"]:
    """Max-pool dilation (TensoRF dilates its alpha mask with a 3x3x3 max-pool)."""
    pooled = F.max_pool3d(grid[None, None].float(), kernel, stride=1, padding=kernel // 2)
    return pooled[0, 0] > 0


def local_cp_features(
    xyz: Float[Tensor, "n 3"],
    ids: Int[Tensor, " n"],
    centres: Float[Tensor, "m 3"],
    half_extent: float,
    lines: Float[Tensor, "3 m l r"],
) -> Float[Tensor, "n r"]:
    """Per-component CP products ``X_r(x) Y_r(y) Z_r(z)`` of cube ``ids`` at points inside it.

    Each cube's three lines have ``l`` nodes spanning [c - R, c + R] (align-corners), stored
    node-major ``(3, m, l, r)`` so one gather reads all components of a node.
    """
    nodes = lines.shape[2]
    position = (xyz - centres[ids] + half_extent) / (2 * half_extent) * (nodes - 1)
    position = position.clamp(0, nodes - 1)
    left = position.floor().clamp(max=nodes - 2).long()
    frac = position - left
    out = None
    for axis in range(3):
        flat = lines[axis].reshape(-1, lines.shape[3])  # (m * l, r)
        row = ids * nodes + left[:, axis]
        v0, v1 = flat[row], flat[row + 1]
        value = torch.lerp(v0, v1, frac[:, axis : axis + 1])
        out = value if out is None else out * value
    return out


def local_cp_mix_torch(
    xyz: Float[Tensor, "n 3"],
    ids: Int[Tensor, "n k"],
    weights: Float[Tensor, "n k"],
    centres: Float[Tensor, "m 3"],
    half_extent: float,
    lines: Float[Tensor, "3 m l r"],
) -> Float[Tensor, "n r"]:
    """Reference of ``local_cp_mix``: per point, the weighted sum over its cubes (id -1: none)
    of their per-component CP products."""
    point, column = (ids >= 0).nonzero(as_tuple=True)
    products = local_cp_features(xyz[point], ids[point, column], centres, half_extent, lines)
    mixed = products * weights[point, column, None]
    return xyz.new_zeros(xyz.shape[0], lines.shape[3]).index_add(0, point, mixed)


# Compositing constants shared with cuda/raster.cpp and gsplat: alphas are capped below 1 so
# transmittance stays invertible, fainter ones are skipped, and a pixel stops once nearly opaque.
ALPHA_MAX = 0.999
ALPHA_MIN = 1.0 / 255.0
TRANSMITTANCE_MIN = 1e-4


def rasterize_to_pixels_torch(
    means2d: Float[Tensor, "n 2"],
    conics: Float[Tensor, "n 3"],
    colors: Float[Tensor, "n c"],
    opacities: Float[Tensor, " n"],
    width: int,
    height: int,
    gaussian_ids: Int[Tensor, " isects"],
    offsets: Int[Tensor, " tiles_plus_1"],
    tile_size: int,
    background: Float[Tensor, " c"] | None = None,
) -> tuple[Float[Tensor, "h w c"], Float[Tensor, "h w"]]:
    """Front-to-back alpha compositing of binned Gaussians, brute force one tile at a time.

    A pixel centre ``p`` gets ``alpha = min(0.999, o * exp(-s))`` from each of its tile's
    Gaussians, with ``s = 0.5 (a dx² + c dy²) + b dx dy`` and ``d = mean - p``; Gaussians with
    ``s < 0`` or ``alpha < 1/255`` are skipped, and compositing stops before the Gaussian that
    would bring the transmittance to 1e-4 or below. Differentiable through autograd.
    """
    tiles_x = -(-width // tile_size)
    c = colors.shape[1]
    out = colors.new_zeros(height, width, c)
    alpha_out = colors.new_zeros(height, width)
    for tile in range(offsets.numel() - 1):
        ty, tx = divmod(tile, tiles_x)
        ys = torch.arange(ty * tile_size, min((ty + 1) * tile_size, height), device=colors.device)
        xs = torch.arange(tx * tile_size, min((tx + 1) * tile_size, width), device=colors.device)
        ids = gaussian_ids[offsets[tile] : offsets[tile + 1]]
        if ids.numel() == 0 or ys.numel() == 0 or xs.numel() == 0:
            continue
        py, px = torch.meshgrid(ys.to(colors.dtype) + 0.5, xs.to(colors.dtype) + 0.5, indexing="ij")
        dx = means2d[ids, 0] - px.reshape(-1, 1)  # (pixels, gaussians)
        dy = means2d[ids, 1] - py.reshape(-1, 1)
        a, b, cc = conics[ids].unbind(-1)
        sigma = 0.5 * (a * dx * dx + cc * dy * dy) + b * dx * dy
        alpha = torch.clamp(opacities[ids] * torch.exp(-sigma), max=ALPHA_MAX)
        alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
        t_after = torch.cumprod(1 - alpha, dim=1)
        t_before = torch.cat([torch.ones_like(t_after[:, :1]), t_after[:, :-1]], dim=1)
        weights = alpha * t_before * (t_after > TRANSMITTANCE_MIN)
        rows = slice(int(ys[0]), int(ys[-1]) + 1)
        cols = slice(int(xs[0]), int(xs[-1]) + 1)
        shape = (ys.numel(), xs.numel())
        out[rows, cols] = (weights @ colors[ids]).reshape(*shape, c)
        alpha_out[rows, cols] = weights.sum(1).reshape(shape)
    if background is not None:
        out = out + (1 - alpha_out)[..., None] * background
    return out, alpha_out


def positional_encoding(x: Float[Tensor, "n d"], frequencies: int) -> Float[Tensor, "n e"]:
    """``[sin(2^k x), cos(2^k x)]`` for k < frequencies, laid out as in the official code."""
    bands = 2.0 ** torch.arange(frequencies, device=x.device, dtype=x.dtype)
    scaled = (x[..., None] * bands).flatten(-2)
    return torch.cat([torch.sin(scaled), torch.cos(scaled)], dim=-1)


def shading_input_torch(
    features: Float[Tensor, "n f"], view_dirs: Float[Tensor, "n 3"], feature_pe: int, view_pe: int
) -> Float[Tensor, "n d"]:
    """Reference of ``shading_input``: the input of TensoRF's MLP_Fea head, ``[features,
    view_dirs, PE(features), PE(view_dirs)]`` (bands 0 leave a PE out)."""
    parts = [features, view_dirs]
    if feature_pe > 0:
        parts.append(positional_encoding(features, feature_pe))
    if view_pe > 0:
        parts.append(positional_encoding(view_dirs, view_pe))
    return torch.cat(parts, dim=-1)
