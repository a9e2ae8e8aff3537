"""Pinhole cameras in one convention, and the rays they cast.

Convention (used everywhere in tensorfields):
- ``c2w`` is a camera-to-world 4x4 matrix in the **OpenCV** convention: the camera looks down
  +z, x points right and y points down in the image. Blender/NeRF (OpenGL) poses are converted by
  the dataparsers (flip the y and z axes of the camera frame).
- Intrinsics are per camera: ``fx, fy`` (pixels) and ``cx, cy`` (pixels, measured from the
  top-left corner of the image, so the centre of a W-wide image is ``cx = W / 2``).
- A pixel ``(u, v)`` (column, row) is sampled at its centre ``(u + 0.5, v + 0.5)``.
- Ray directions are unit length, so ``t`` along a ray is a Euclidean distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor


@dataclass
class Cameras:
    """A batch of pinhole cameras sharing one image size (OpenCV camera-to-world)."""

    c2w: Float[Tensor, "n 4 4"]
    fx: Float[Tensor, " n"]
    fy: Float[Tensor, " n"]
    cx: Float[Tensor, " n"]
    cy: Float[Tensor, " n"]
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.c2w.ndim != 3 or self.c2w.shape[-2:] != (4, 4):
            raise ValueError(f"c2w must have shape (n, 4, 4), got {tuple(self.c2w.shape)}")
        n = self.c2w.shape[0]
        for name in ("fx", "fy", "cx", "cy"):
            value = getattr(self, name)
            if value.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {tuple(value.shape)}")

    def __len__(self) -> int:
        return self.c2w.shape[0]

    @property
    def device(self) -> torch.device:
        return self.c2w.device

    def __getitem__(self, index: int | slice | Tensor) -> Cameras:
        if isinstance(index, int):
            index = slice(index, index + 1)
        return Cameras(
            self.c2w[index],
            self.fx[index],
            self.fy[index],
            self.cx[index],
            self.cy[index],
            self.width,
            self.height,
        )

    def to(self, device: torch.device | str) -> Cameras:
        return Cameras(
            self.c2w.to(device),
            self.fx.to(device),
            self.fy.to(device),
            self.cx.to(device),
            self.cy.to(device),
            self.width,
            self.height,
        )

    def scaled(self, factor: float) -> Cameras:
        """The same cameras for images resized by ``factor`` (e.g. 0.5 halves width and height)."""
        width, height = round(self.width * factor), round(self.height * factor)
        sx, sy = width / self.width, height / self.height
        return Cameras(
            self.c2w, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height
        )

    def viewmats(self) -> Float[Tensor, "n 4 4"]:
        """World-to-camera matrices (OpenCV), the inverse of ``c2w`` (what rasterizers take)."""
        rotation = self.c2w[:, :3, :3].transpose(1, 2)
        w2c = torch.zeros_like(self.c2w)
        w2c[:, :3, :3] = rotation
        w2c[:, :3, 3] = -(rotation @ self.c2w[:, :3, 3:])[..., 0]
        w2c[:, 3, 3] = 1.0
        return w2c

    def intrinsics(self) -> Float[Tensor, "n 3 3"]:
        """Pinhole matrices ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``, one per camera."""
        K = torch.zeros(len(self), 3, 3, dtype=self.c2w.dtype, device=self.device)
        K[:, 0, 0], K[:, 1, 1] = self.fx, self.fy
        K[:, 0, 2], K[:, 1, 2] = self.cx, self.cy
        K[:, 2, 2] = 1.0
        return K

    def rays_for_pixels(
        self,
        camera_index: Int[Tensor, " r"],
        rows: Int[Tensor, " r"],
        cols: Int[Tensor, " r"],
    ) -> tuple[Float[Tensor, "r 3"], Float[Tensor, "r 3"]]:
        """World-space origins and unit directions through the centres of the given pixels."""
        c2w = self.c2w[camera_index]
        x = (cols.to(c2w.dtype) + 0.5 - self.cx[camera_index]) / self.fx[camera_index]
        y = (rows.to(c2w.dtype) + 0.5 - self.cy[camera_index]) / self.fy[camera_index]
        dirs_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
        dirs = torch.einsum("rij,rj->ri", c2w[:, :3, :3], dirs_cam)
        dirs = dirs / dirs.norm(dim=-1, keepdim=True)
        origins = c2w[:, :3, 3]
        return origins, dirs

    def rays(self, index: int) -> tuple[Float[Tensor, "h w 3"], Float[Tensor, "h w 3"]]:
        """All rays of camera ``index`` as (origins, directions) images."""
        rows, cols = torch.meshgrid(
            torch.arange(self.height, device=self.device),
            torch.arange(self.width, device=self.device),
            indexing="ij",
        )
        cam = torch.full_like(rows, index)
        origins, dirs = self.rays_for_pixels(cam.reshape(-1), rows.reshape(-1), cols.reshape(-1))
        shape = (self.height, self.width, 3)
        return origins.reshape(shape), dirs.reshape(shape)


OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


def opengl_to_opencv(c2w: Float[Tensor, "n 4 4"]) -> Float[Tensor, "n 4 4"]:
    """Convert OpenGL/Blender camera-to-world matrices (camera looks down -z, y up) to OpenCV."""
    return c2w @ OPENGL_TO_OPENCV.to(c2w)
