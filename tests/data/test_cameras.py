"""Cameras: pixel centres, the principal ray, OpenGL -> OpenCV, scaling."""

from __future__ import annotations

import math

import torch

from tensorfields.data.cameras import Cameras, opengl_to_opencv


def one_camera(c2w: torch.Tensor, width: int = 5, height: int = 3) -> Cameras:
    def vec(value: float) -> torch.Tensor:
        return torch.tensor([value])

    return Cameras(c2w[None], vec(10.0), vec(12.0), vec(width / 2), vec(height / 2), width, height)


def rotation(axis: torch.Tensor, angle: float) -> torch.Tensor:
    """Rodrigues rotation matrix."""
    k = axis / axis.norm()
    kx = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return torch.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


def test_ray_through_principal_point_follows_camera_z() -> None:
    c2w = torch.eye(4)
    c2w[:3, :3] = rotation(torch.tensor([0.3, -1.0, 0.5]), 1.1)
    c2w[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    cameras = one_camera(c2w)  # 5x3 image: pixel (row 1, col 2) is centred on (cx, cy)
    origins, dirs = cameras.rays_for_pixels(torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    torch.testing.assert_close(origins[0], c2w[:3, 3])
    torch.testing.assert_close(dirs[0], c2w[:3, 2])


def test_pixel_centres_and_image_directions() -> None:
    cameras = one_camera(torch.eye(4))
    _, dirs = cameras.rays(0)
    assert dirs.shape == (3, 5, 3)
    expected = torch.tensor([(0.5 - 2.5) / 10.0, (0.5 - 1.5) / 12.0, 1.0])
    torch.testing.assert_close(dirs[0, 0], expected / expected.norm())
    # OpenCV: the top-left pixel looks left (-x) and up (-y); the last looks right and down.
    assert dirs[-1, -1, 0] > 0 and dirs[-1, -1, 1] > 0
    torch.testing.assert_close(dirs.norm(dim=-1), torch.ones(3, 5))


def test_opengl_to_opencv_known_pose() -> None:
    # OpenGL camera at (0, 0, 4) with identity rotation looks down world -z, at the origin.
    c2w_gl = torch.eye(4)
    c2w_gl[2, 3] = 4.0
    c2w_cv = opengl_to_opencv(c2w_gl[None])[0]
    expected = torch.tensor(
        [[1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, -1.0, 4.0], [0.0, 0.0, 0.0, 1.0]]
    )
    torch.testing.assert_close(c2w_cv, expected)
    origins, dirs = one_camera(c2w_cv).rays_for_pixels(
        torch.tensor([0]), torch.tensor([1]), torch.tensor([2])
    )
    torch.testing.assert_close(dirs[0], torch.tensor([0.0, 0.0, -1.0]))  # towards the origin
    # Image row 0 (top, y down in OpenCV) sees world +y (up in the OpenGL camera).
    _, top = one_camera(c2w_cv).rays_for_pixels(
        torch.tensor([0]), torch.tensor([0]), torch.tensor([2])
    )
    assert top[0, 1] > 0


def test_scaled_halves_size_and_intrinsics() -> None:
    cameras = Cameras(
        torch.eye(4)[None].repeat(2, 1, 1),
        torch.tensor([100.0, 110.0]),
        torch.tensor([120.0, 130.0]),
        torch.tensor([40.0, 41.0]),
        torch.tensor([30.0, 31.0]),
        80,
        60,
    )
    half = cameras.scaled(0.5)
    assert (half.width, half.height) == (40, 30)
    torch.testing.assert_close(half.fx, torch.tensor([50.0, 55.0]))
    torch.testing.assert_close(half.fy, torch.tensor([60.0, 65.0]))
    torch.testing.assert_close(half.cx, torch.tensor([20.0, 20.5]))
    torch.testing.assert_close(half.cy, torch.tensor([15.0, 15.5]))
    torch.testing.assert_close(half.c2w, cameras.c2w)
