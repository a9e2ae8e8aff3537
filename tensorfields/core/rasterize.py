"""Gaussian rasterization with one signature for both devices.

``rasterize_gaussians`` takes 3D Gaussians and cameras and returns images: on CUDA tensors it
calls ``gsplat.rasterization`` (imported lazily), on CPU tensors the project's own tile
rasterizer: EWA projection (projection.py), tile binning (tiles.py) and front-to-back
compositing, native (``cuda/raster.cpp``) when built, else the PyTorch reference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.core._torch_impl import rasterize_to_pixels_torch
from tensorfields.core.native import ops_for
from tensorfields.core.projection import Projection, project_gaussians, spherical_harmonics
from tensorfields.core.tiles import TileBins, bin_gaussians, visible_radii


class _RasterizeToPixels(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ops, means2d, conics, colors, opacities, background, width, height, bins):
        render, alpha = ops.rasterize_fwd(
            means2d,
            conics,
            colors,
            opacities,
            background,
            width,
            height,
            bins.tile_size,
            bins.gaussian_ids,
            bins.offsets,
        )
        ctx.ops, ctx.size, ctx.bins = ops, (width, height), bins
        ctx.save_for_backward(means2d, conics, colors, opacities, background)
        return render, alpha

    @staticmethod
    def backward(ctx, grad_render, grad_alpha):
        means2d, conics, colors, opacities, background = ctx.saved_tensors
        bins = ctx.bins
        grads = ctx.ops.rasterize_bwd(
            grad_render.contiguous(),
            grad_alpha.contiguous(),
            means2d,
            conics,
            colors,
            opacities,
            background,
            *ctx.size,
            bins.tile_size,
            bins.gaussian_ids,
            bins.offsets,
        )
        return (None, *grads, None, None, None, None)


def rasterize_to_pixels(
    means2d: Float[Tensor, "n 2"],
    conics: Float[Tensor, "n 3"],
    colors: Float[Tensor, "n c"],
    opacities: Float[Tensor, " n"],
    width: int,
    height: int,
    bins: TileBins,
    background: Float[Tensor, " c"] | None = None,
) -> tuple[Float[Tensor, "h w c"], Float[Tensor, "h w"]]:
    """Composite one camera's binned 2D Gaussians: ``(render, alpha)``; see the reference
    :func:`~tensorfields.core._torch_impl.rasterize_to_pixels_torch` for the exact rule."""
    floats = [means2d, conics, colors, opacities] + ([] if background is None else [background])
    ops = ops_for(floats, no_grad=[] if background is None else [background])
    if ops is None or means2d.device.type != "cpu":
        return rasterize_to_pixels_torch(
            means2d,
            conics,
            colors,
            opacities,
            width,
            height,
            bins.gaussian_ids,
            bins.offsets,
            bins.tile_size,
            background,
        )
    empty = colors.new_zeros(0) if background is None else background.contiguous()
    return _RasterizeToPixels.apply(
        ops,
        means2d.contiguous(),
        conics.contiguous(),
        colors.contiguous(),
        opacities.contiguous(),
        empty,
        width,
        height,
        bins,
    )


@dataclass
class Rasterized:
    """Images per camera and what densification needs (gsplat's ``info``, unpacked layout):
    ``means2d`` is the tensor whose gradient measures screen-space motion (call
    ``retain_grad()`` on it before backward), ``radii`` are 0 for culled Gaussians."""

    rgb: Float[Tensor, "cams h w 3"]
    alpha: Float[Tensor, "cams h w"]
    depth: Float[Tensor, "cams h w"]
    info: dict = field(default_factory=dict)


def densify_info(proj: Projection, width: int, height: int) -> dict:
    """gsplat's ``info`` in its unpacked layout: what its densification strategies read."""
    return {
        **proj._asdict(),
        "width": width,
        "height": height,
        "n_cameras": proj.means2d.shape[0],
        "gaussian_ids": None,
    }


def _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree) -> None:
    n = means.shape[0]
    shapes = {
        "means": (means, (n, 3)),
        "quats": (quats, (n, 4)),
        "scales": (scales, (n, 3)),
        "opacities": (opacities, (n,)),
        "viewmats": (viewmats, (viewmats.shape[0], 4, 4)),
        "Ks": (Ks, (viewmats.shape[0], 3, 3)),
    }
    if sh_degree is None:
        shapes["colors"] = (colors, (n, 3))
    else:
        if not 0 <= sh_degree <= 3:
            raise ValueError(f"sh_degree must be 0-3, got {sh_degree}")
        shapes["colors"] = (colors, (n, max(colors.shape[1], (sh_degree + 1) ** 2), 3))
    for name, (tensor, shape) in shapes.items():
        if tuple(tensor.shape) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}")


def rasterize_gaussians(
    means: Float[Tensor, "n 3"],
    quats: Float[Tensor, "n 4"],
    scales: Float[Tensor, "n 3"],
    opacities: Float[Tensor, " n"],
    colors: Float[Tensor, "n 3"] | Float[Tensor, "n k 3"],
    viewmats: Float[Tensor, "cams 4 4"],
    Ks: Float[Tensor, "cams 3 3"],
    width: int,
    height: int,
    sh_degree: int | None = None,
    background: Float[Tensor, " 3"] | None = None,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
    tile_size: int = 16,
) -> Rasterized:
    """Render Gaussians (``scales`` as standard deviations, ``opacities`` in [0, 1], quaternions
    ``(w, x, y, z)``) into each camera (OpenCV world-to-camera ``viewmats``, pinhole ``Ks``).

    ``colors`` are RGB, or SH coefficients when ``sh_degree`` is given (evaluated towards each
    camera and offset by 0.5, clamped at 0, as in gsplat). ``depth`` is the expected camera z
    (accumulated z over accumulated alpha). ``background`` fills what alpha leaves.
    """
    _check_inputs(means, quats, scales, opacities, colors, viewmats, Ks, sh_degree)
    if means.device.type == "cuda":
        from tensorfields.core.gsplat_backend import rasterize_with_gsplat

        return rasterize_with_gsplat(
            means,
            quats,
            scales,
            opacities,
            colors,
            viewmats,
            Ks,
            width,
            height,
            sh_degree,
            background,
            near_plane,
            far_plane,
            eps2d,
            tile_size,
        )
    proj = project_gaussians(
        means, quats, scales, viewmats, Ks, width, height, near_plane, far_plane, eps2d
    )
    rgbs, alphas, depths = [], [], []
    bg = None if background is None else torch.cat([background, background.new_zeros(1)])
    for cam in range(viewmats.shape[0]):
        rgb = colors
        if sh_degree is not None:
            camera_centre = -viewmats[cam, :3, :3].T @ viewmats[cam, :3, 3]
            rgb = spherical_harmonics(sh_degree, means - camera_centre, colors)
            rgb = torch.clamp_min(rgb + 0.5, 0.0)
        # Depth rides along as a fourth channel (gsplat's "RGB+ED"), normalised below.
        channels = torch.cat([rgb, proj.depths[cam, :, None]], dim=-1)
        radii = visible_radii(proj.conics[cam], opacities, proj.radii[cam])
        bins = bin_gaussians(proj.means2d[cam], radii, proj.depths[cam], width, height, tile_size)
        image, alpha = rasterize_to_pixels(
            proj.means2d[cam], proj.conics[cam], channels, opacities, width, height, bins, bg
        )
        rgbs.append(image[..., :3])
        alphas.append(alpha)
        depths.append(image[..., 3] / alpha.clamp(min=1e-10))
    info = densify_info(proj, width, height)
    return Rasterized(torch.stack(rgbs), torch.stack(alphas), torch.stack(depths), info)
