"""The GPU path of :func:`~tensorfields.core.rasterize.rasterize_gaussians`: gsplat.

gsplat is imported on first use only: where it is not prebuilt it JIT-compiles its CUDA kernels
then (minutes). Its conventions are the ones the CPU rasterizer follows, so the two agree.
"""

from __future__ import annotations

from jaxtyping import Float
from torch import Tensor

from tensorfields.core.projection import Projection


def rasterize_with_gsplat(
    means: Float[Tensor, "n 3"],
    quats: Float[Tensor, "n 4"],
    scales: Float[Tensor, "n 3"],
    opacities: Float[Tensor, " n"],
    colors: Tensor,
    viewmats: Float[Tensor, "cams 4 4"],
    Ks: Float[Tensor, "cams 3 3"],
    width: int,
    height: int,
    sh_degree: int | None,
    background: Float[Tensor, " 3"] | None,
    near_plane: float,
    far_plane: float,
    eps2d: float,
    tile_size: int,
):
    """``gsplat.rasterization`` in the unpacked layout, its output as a ``Rasterized``."""
    try:
        from gsplat import rasterization
    except ImportError as error:
        raise ImportError(
            "rendering Gaussians on a GPU needs gsplat: pip install gsplat packaging"
        ) from error
    from tensorfields.core.rasterize import Rasterized, densify_info

    cams = viewmats.shape[0]
    backgrounds = None if background is None else background.expand(cams, 3)
    images, alphas, meta = rasterization(
        means,
        quats,
        scales,
        opacities,
        colors,
        viewmats,
        Ks,
        width,
        height,
        near_plane=near_plane,
        far_plane=far_plane,
        eps2d=eps2d,
        sh_degree=sh_degree,
        packed=False,
        tile_size=tile_size,
        backgrounds=backgrounds,
        render_mode="RGB+ED",
    )
    projection = Projection(meta["means2d"], meta["conics"], meta["depths"], meta["radii"])
    info = densify_info(projection, width, height)
    return Rasterized(images[..., :3], alphas[..., 0], images[..., 3], info)
