"""EWA projection of 3D Gaussians to the image plane, and spherical-harmonics colours.

Conventions are gsplat 1.5.3's (so the CPU rasterizer and ``gsplat.rasterization`` on a GPU
agree): OpenCV world-to-camera ``viewmats``, pinhole ``Ks``, quaternions ``(w, x, y, z)``
normalised here, a 0.3 px² low-pass added to every 2D covariance, radii of 3.33 standard
deviations per image axis, and Gaussians outside ``(near, far)`` or off-screen get radius 0.
These functions are plain differentiable PyTorch; they are cheap next to compositing.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor

# Standard deviations a radius covers per axis (gsplat's ``3.33``).
RADIUS_SIGMAS = 3.33


class Projection(NamedTuple):
    """Per camera and Gaussian: pixel-space means, conics ``(a, b, c)`` of the inverse 2D
    covariance ``[[a, b], [b, c]]``, camera-space depths, and integer radii (0 = culled)."""

    means2d: Float[Tensor, "cams n 2"]
    conics: Float[Tensor, "cams n 3"]
    depths: Float[Tensor, "cams n"]
    radii: Int[Tensor, "cams n 2"]


def quat_to_rotmat(quats: Float[Tensor, "n 4"]) -> Float[Tensor, "n 3 3"]:
    """Rotation matrices of quaternions ``(w, x, y, z)`` (normalised first)."""
    w, x, y, z = F.normalize(quats, dim=-1).unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )  # fmt: skip
    return torch.stack(rows, dim=-1).reshape(*quats.shape[:-1], 3, 3)


def covariances(
    quats: Float[Tensor, "n 4"], scales: Float[Tensor, "n 3"]
) -> Float[Tensor, "n 3 3"]:
    """World-space covariances ``R S S^T R^T`` (``scales`` are standard deviations)."""
    m = quat_to_rotmat(quats) * scales[..., None, :]
    return m @ m.transpose(-1, -2)


def project_gaussians(
    means: Float[Tensor, "n 3"],
    quats: Float[Tensor, "n 4"],
    scales: Float[Tensor, "n 3"],
    viewmats: Float[Tensor, "cams 4 4"],
    Ks: Float[Tensor, "cams 3 3"],
    width: int,
    height: int,
    near_plane: float = 0.01,
    far_plane: float = 1e10,
    eps2d: float = 0.3,
) -> Projection:
    """Project Gaussians into each camera (EWA splatting with a local affine Jacobian)."""
    rotation, translation = viewmats[:, None, :3, :3], viewmats[:, None, :3, 3]
    means_c = (rotation @ means[None, :, :, None])[..., 0] + translation  # (cams, n, 3)
    covars_c = rotation @ covariances(quats, scales)[None] @ rotation.transpose(-1, -2)
    tx, ty, tz = means_c.unbind(-1)
    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    # The Jacobian is evaluated at a point clamped to 1.3x the field of view, as gsplat does:
    # far off-screen Gaussians would otherwise get huge, numerically useless footprints.
    margin_x, margin_y = 0.3 * 0.5 * width / fx, 0.3 * 0.5 * height / fy
    tx = tz * torch.clamp(tx / tz, min=-(cx / fx + margin_x), max=(width - cx) / fx + margin_x)
    ty = tz * torch.clamp(ty / tz, min=-(cy / fy + margin_y), max=(height - cy) / fy + margin_y)
    zero = torch.zeros_like(tz)
    J = torch.stack(
        [fx / tz, zero, -fx * tx / tz**2, zero, fy / tz, -fy * ty / tz**2], dim=-1
    ).reshape(*tz.shape, 2, 3)
    cov2d = J @ covars_c @ J.transpose(-1, -2)
    cov2d = cov2d + eps2d * torch.eye(2, dtype=cov2d.dtype, device=cov2d.device)
    a, b, c = cov2d[..., 0, 0], 0.5 * (cov2d[..., 0, 1] + cov2d[..., 1, 0]), cov2d[..., 1, 1]
    det = (a * c - cov2d[..., 0, 1] * cov2d[..., 1, 0]).clamp(min=1e-10)
    conics = torch.stack([c / det, -b / det, a / det], dim=-1)
    u = fx * means_c[..., 0] / means_c[..., 2] + cx
    v = fy * means_c[..., 1] / means_c[..., 2] + cy
    means2d = torch.stack([u, v], dim=-1)
    depths = means_c[..., 2]
    with torch.no_grad():
        radii = torch.ceil(RADIUS_SIGMAS * torch.stack([a, c], dim=-1).sqrt())
        on_screen = (
            (u + radii[..., 0] > 0)
            & (u - radii[..., 0] < width)
            & (v + radii[..., 1] > 0)
            & (v - radii[..., 1] < height)
        )
        valid = (det > 0) & (depths > near_plane) & (depths < far_plane) & on_screen
        radii = torch.where(valid[..., None], radii, 0.0).int()
    return Projection(means2d, conics, depths, radii)


# Real spherical-harmonics constants (degree 0-3), the ones 3DGS and gsplat use.
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792,
         0.5462742152960396)  # fmt: skip
SH_C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154,
         -0.4570457994644658, 1.445305721320277, -0.5900435899266435)  # fmt: skip


def sh_bases(degree: int, dirs: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch k"]:
    """The ``(degree + 1)²`` real SH basis values at unit directions ``dirs``."""
    if not 0 <= degree <= 3:
        raise ValueError(f"SH degree must be 0-3, got {degree}")
    x, y, z = dirs.unbind(-1)
    out = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        out += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        out += [
            SH_C2[0] * xy,
            SH_C2[1] * yz,
            SH_C2[2] * (2 * zz - xx - yy),
            SH_C2[3] * xz,
            SH_C2[4] * (xx - yy),
        ]
    if degree >= 3:
        out += [
            SH_C3[0] * y * (3 * xx - yy),
            SH_C3[1] * xy * z,
            SH_C3[2] * y * (4 * zz - xx - yy),
            SH_C3[3] * z * (2 * zz - 3 * xx - 3 * yy),
            SH_C3[4] * x * (4 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3 * yy),
        ]
    return torch.stack(out, dim=-1)


def spherical_harmonics(
    degree: int, dirs: Float[Tensor, "*batch 3"], coeffs: Float[Tensor, "*batch k 3"]
) -> Float[Tensor, "*batch 3"]:
    """Colours from SH coefficients, using the first ``(degree + 1)²`` of the ``k`` given.

    ``dirs`` need not be unit length. Like gsplat, the result is *not* offset by 0.5 here.
    """
    n_bases = (degree + 1) ** 2
    if coeffs.shape[-2] < n_bases:
        raise ValueError(f"SH degree {degree} needs {n_bases} coefficients, got {coeffs.shape[-2]}")
    bases = sh_bases(degree, F.normalize(dirs, dim=-1))
    return (bases[..., None] * coeffs[..., :n_bases, :]).sum(-2)


def rgb_to_sh(rgb: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch 3"]:
    """The degree-0 coefficient that renders as ``rgb`` (after the +0.5 offset)."""
    return (rgb - 0.5) / SH_C0
