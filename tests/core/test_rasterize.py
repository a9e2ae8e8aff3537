"""Gaussian rasterization: projection and SH against gsplat's own PyTorch functions, tile
binning against gsplat's, the native compositor against the brute-force reference (outputs and
gradients for every input), closed-form pixels, culling, and bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from tensorfields.core._torch_impl import rasterize_to_pixels_torch
from tensorfields.core.projection import project_gaussians, rgb_to_sh, spherical_harmonics
from tensorfields.core.rasterize import _RasterizeToPixels, rasterize_gaussians
from tensorfields.core.tiles import bin_gaussians, visible_radii

WIDTH, HEIGHT = 40, 28  # not multiples of 16: partial tiles on both edges


def _scene(n: int, seed: int = 0, dtype=torch.float32):
    """Gaussians before a camera at the origin looking down +z: a few behind it, a few off
    screen, a few very thin; plus two cameras (identity and a turned, shifted one)."""
    g = torch.Generator().manual_seed(seed)
    extent, low = torch.tensor([4.0, 3.0, 4.0]), torch.tensor([-2.0, -1.5, 1.0])
    means = torch.rand(n, 3, generator=g, dtype=dtype) * extent + low
    means[:3, 2] = -1.0  # behind the camera
    means[3:5, 0] = 30.0  # far off screen
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.rand(n, 3, generator=g, dtype=dtype) * 0.25 + 0.02
    scales[5:8, 1] = 1e-4  # very thin
    opacities = torch.rand(n, generator=g, dtype=dtype) * 0.9 + 0.05
    colors = torch.rand(n, 3, generator=g, dtype=dtype)
    angle = 0.3
    turn = torch.tensor(
        [
            [math.cos(angle), 0, math.sin(angle), 0.2],
            [0, 1, 0, -0.1],
            [-math.sin(angle), 0, math.cos(angle), 0.3],
            [0, 0, 0, 1],
        ],
        dtype=dtype,
    )
    viewmats = torch.stack([torch.eye(4, dtype=dtype), turn])
    K = torch.tensor([[30.0, 0, WIDTH / 2], [0, 32.0, HEIGHT / 2], [0, 0, 1]], dtype=dtype)
    return means, quats, scales, opacities, colors, viewmats, torch.stack([K, K])


def test_projection_matches_gsplat_torch_impl() -> None:
    torch_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    means, quats, scales, _, _, viewmats, Ks = _scene(200, dtype=torch.float64)
    ours = project_gaussians(means, quats, scales, viewmats, Ks, WIDTH, HEIGHT)
    covars, _ = torch_impl._quat_scale_to_covar_preci(quats, scales, compute_preci=False)
    radii, means2d, depths, conics, _ = torch_impl._fully_fused_projection(
        means, covars, viewmats, Ks, WIDTH, HEIGHT
    )
    assert torch.equal(ours.radii, radii)
    assert (radii[:, :3] == 0).all() and (radii[:, 3:5] == 0).all()  # behind / off screen
    drawn = (radii > 0).all(-1)
    assert drawn.sum() > 100
    torch.testing.assert_close(ours.means2d[drawn], means2d[drawn])
    torch.testing.assert_close(ours.conics[drawn], conics[drawn])
    torch.testing.assert_close(ours.depths, depths)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_spherical_harmonics_match_gsplat(degree: int) -> None:
    torch_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    g = torch.Generator().manual_seed(degree)
    dirs = torch.randn(50, 3, generator=g, dtype=torch.float64)
    coeffs = torch.randn(50, 16, 3, generator=g, dtype=torch.float64)
    expected = torch_impl._spherical_harmonics(degree, dirs, coeffs)
    torch.testing.assert_close(spherical_harmonics(degree, dirs, coeffs), expected)
    # Degree 0 is a constant colour: rgb_to_sh inverts it (with gsplat's +0.5).
    rgb = torch.rand(4, 3, dtype=torch.float64)
    dc = rgb_to_sh(rgb)[:, None, :]
    torch.testing.assert_close(spherical_harmonics(0, dirs[:4], dc) + 0.5, rgb)


def test_tile_bins_match_gsplat_isect() -> None:
    torch_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    means, quats, scales, *_, viewmats, Ks = _scene(40)
    proj = project_gaussians(means, quats, scales, viewmats[:1], Ks[:1], WIDTH, HEIGHT)
    bins = bin_gaussians(proj.means2d[0], proj.radii[0], proj.depths[0], WIDTH, HEIGHT, 16)
    tiles_x, tiles_y = bins.tiles_x, bins.tiles_y
    _, isect_ids, flatten_ids = torch_impl._isect_tiles(
        proj.means2d, proj.radii, proj.depths, 16, tiles_x, tiles_y
    )
    offsets = torch_impl._isect_offset_encode(isect_ids, 1, tiles_x, tiles_y).flatten()
    assert torch.equal(bins.gaussian_ids, flatten_ids.long())
    assert torch.equal(bins.offsets[:-1], offsets.long())
    assert bins.offsets[-1] == len(flatten_ids)


def test_visible_radii_bin_fewer_pairs_for_the_same_image() -> None:
    means, quats, scales, opacities, colors, viewmats, Ks = _scene(300, seed=7)
    opacities[::3] = 0.02  # faint Gaussians reach 1/255 well inside 3.33 sigma
    opacities[1] = 0.003  # below 1/255: never drawn
    proj = project_gaussians(means, quats, scales, viewmats[:1], Ks[:1], WIDTH, HEIGHT)
    tight = visible_radii(proj.conics[0], opacities, proj.radii[0])
    assert (tight <= proj.radii[0]).all() and (tight[1] == 0).all()
    params = [
        t.clone().requires_grad_() for t in (proj.means2d[0], proj.conics[0], colors, opacities)
    ]
    outputs = {}
    for name, radii in (("full", proj.radii[0]), ("tight", tight)):
        bins = bin_gaussians(proj.means2d[0], radii, proj.depths[0], WIDTH, HEIGHT, 16)
        out = rasterize_to_pixels_torch(
            *params, WIDTH, HEIGHT, bins.gaussian_ids, bins.offsets, 16, torch.ones(3)
        )
        grads = torch.autograd.grad(out[0].sum() + out[1].sum(), params)
        outputs[name] = (bins.gaussian_ids.numel(), out, grads)
    assert outputs["tight"][0] < 0.9 * outputs["full"][0]
    for a, b in zip(
        outputs["tight"][1] + outputs["tight"][2],
        outputs["full"][1] + outputs["full"][2],
        strict=True,
    ):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def _binned(n: int, seed: int, dtype, width: int = WIDTH, height: int = HEIGHT):
    """Projected, binned inputs of the compositor for camera 0 (leaf tensors)."""
    means, quats, scales, opacities, colors, viewmats, Ks = _scene(n, seed, dtype)
    proj = project_gaussians(means, quats, scales, viewmats[:1], Ks[:1], width, height)
    bins = bin_gaussians(proj.means2d[0], proj.radii[0], proj.depths[0], width, height, 16)
    colors = torch.cat([colors, proj.depths[0, :, None]], dim=-1)  # 4 channels, like depth
    inputs = [proj.means2d[0], proj.conics[0], colors, opacities]
    return [t.detach().clone().requires_grad_() for t in inputs], bins


@pytest.mark.parametrize("n, seed", [(10, 0), (60, 1), (400, 2)])
@pytest.mark.parametrize("with_background", [False, True])
def test_native_compositor_matches_reference(native_module, n, seed, with_background) -> None:
    inputs, bins = _binned(n, seed, torch.float32)
    background = torch.tensor([0.2, 0.5, 1.0, 0.0]) if with_background else None
    args = (WIDTH, HEIGHT, bins.gaussian_ids, bins.offsets, bins.tile_size, background)
    ref = rasterize_to_pixels_torch(*inputs, *args)
    empty = torch.zeros(0) if background is None else background
    nat = _RasterizeToPixels.apply(native_module, *inputs, empty, WIDTH, HEIGHT, bins)
    for a, b in zip(nat, ref, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(t.shape, generator=g) for t in ref]

    def grads(outputs):
        total = sum((w * t).sum() for w, t in zip(weights, outputs, strict=True))
        return torch.autograd.grad(total, inputs)

    names = ("means2d", "conics", "colors", "opacities")
    for name, a, b in zip(names, grads(nat), grads(ref), strict=True):
        torch.testing.assert_close(a, b, atol=2e-4, rtol=1e-3, msg=f"grad of {name}")


def test_native_compositor_gradcheck(native_module) -> None:
    inputs, bins = _binned(12, 3, torch.float64, width=20, height=12)
    background = torch.tensor([0.1, 0.2, 0.3, 0.0], dtype=torch.float64)

    def composite(*tensors):
        return _RasterizeToPixels.apply(native_module, *tensors, background, 20, 12, bins)

    assert bins.gaussian_ids.numel() > 0
    assert torch.autograd.gradcheck(composite, inputs, eps=1e-6, atol=1e-5)


def test_single_gaussian_closed_form(backend) -> None:
    # An isotropic Gaussian centred on pixel (5, 7)'s centre: that pixel's alpha is exactly the
    # opacity; one pixel to the right it falls by exp(-0.5 / s^2), s^2 the EWA variance along x:
    # sigma^2 (f/z)^2 (1 + (x/z)^2) from the Jacobian at x, plus the 0.3 low-pass.
    z, sigma, f, opacity = 2.0, 0.02, 100.0, 0.8
    K = torch.tensor([[[f, 0.0, 16.0], [0.0, f, 16.0], [0.0, 0.0, 1.0]]])
    u, v = 5.5, 7.5
    means = torch.tensor([[(u - 16.0) * z / f, (v - 16.0) * z / f, z]])
    out = rasterize_gaussians(
        means,
        torch.tensor([[1.0, 0, 0, 0]]),
        torch.full((1, 3), sigma),
        torch.tensor([opacity]),
        torch.tensor([[1.0, 0.0, 0.0]]),
        torch.eye(4)[None],
        K,
        32,
        32,
        background=torch.tensor([0.0, 0.0, 1.0]),
    )
    s2 = (sigma * f / z) ** 2 * (1 + (means[0, 0] / z).item() ** 2) + 0.3
    assert out.alpha[0, 7, 5].item() == pytest.approx(opacity, rel=1e-5)
    assert out.alpha[0, 7, 6].item() == pytest.approx(opacity * math.exp(-0.5 / s2), rel=1e-4)
    torch.testing.assert_close(out.rgb[0, 7, 5], torch.tensor([opacity, 0.0, 1 - opacity]))
    assert out.depth[0, 7, 5].item() == pytest.approx(z, rel=1e-5)
    assert out.alpha[0, 20:, 20:].abs().max() == 0  # far from the footprint


def test_culled_gaussians_draw_nothing(backend) -> None:
    means, quats, scales, opacities, colors, viewmats, Ks = _scene(8)
    behind = rasterize_gaussians(
        means[:3],
        quats[:3],
        scales[:3],
        opacities[:3],
        colors[:3],
        viewmats,
        Ks,
        WIDTH,
        HEIGHT,
        background=torch.ones(3),
    )
    assert (behind.info["radii"] == 0).all()
    assert behind.alpha.abs().max() == 0 and torch.equal(behind.rgb, torch.ones_like(behind.rgb))


def test_sh_colors_and_gradients_reach_every_parameter(backend) -> None:
    means, quats, scales, opacities, _, viewmats, Ks = _scene(80, seed=4)
    coeffs = torch.randn(80, 16, 3) * 0.2
    params = [t.clone().requires_grad_() for t in (means, quats, scales, opacities, coeffs)]
    out = rasterize_gaussians(*params, viewmats, Ks, WIDTH, HEIGHT, sh_degree=3)
    out.info["means2d"].retain_grad()
    (out.rgb.sum() + out.depth.sum()).backward()
    assert out.rgb.shape == (2, HEIGHT, WIDTH, 3) and out.depth.shape == (2, HEIGHT, WIDTH)
    for p in params:
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
    assert out.info["means2d"].grad.shape == (2, 80, 2)


def test_native_and_reference_agree_end_to_end(native_module, monkeypatch) -> None:
    """The whole op (two cameras, SH colours, background): images and the gradients of every
    Gaussian parameter agree between the native compositor and the reference."""
    means, quats, scales, opacities, _, viewmats, Ks = _scene(150, seed=5)
    coeffs = torch.randn(150, 9, 3, generator=torch.Generator().manual_seed(5)) * 0.3
    params = [t.requires_grad_() for t in (means, quats, scales, opacities, coeffs)]
    weights = torch.randn(2, HEIGHT, WIDTH, 3, generator=torch.Generator().manual_seed(6))
    results = {}
    for name in ("torch", "native"):
        monkeypatch.setenv("TF_BACKEND", name)
        out = rasterize_gaussians(
            *params, viewmats, Ks, WIDTH, HEIGHT, sh_degree=2, background=torch.ones(3)
        )
        loss = (out.rgb * weights).sum() + out.alpha.sum() + 0.1 * out.depth.sum()
        results[name] = (out, torch.autograd.grad(loss, params))
    (nat, nat_grads), (ref, ref_grads) = results["native"], results["torch"]
    for key in ("rgb", "alpha", "depth"):
        torch.testing.assert_close(getattr(nat, key), getattr(ref, key), atol=1e-4, rtol=1e-4)
    names = ("means", "quats", "scales", "opacities", "colors")
    for name, a, b in zip(names, nat_grads, ref_grads, strict=True):
        assert b.abs().sum() > 0, name
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3, msg=f"grad of {name}")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a: a.__setitem__(1, a[1][:, :3]), "quats must have shape"),
        (lambda a: a.__setitem__(3, a[3][:, None]), "opacities must have shape"),
        (lambda a: a.__setitem__(6, a[6][:1]), "Ks must have shape"),
    ],
)
def test_bad_inputs_raise(change, message) -> None:
    args = list(_scene(5))
    change(args)
    with pytest.raises(ValueError, match=message):
        rasterize_gaussians(*args, WIDTH, HEIGHT)
    with pytest.raises(ValueError, match="sh_degree 2 needs|colors must have shape"):
        rasterize_gaussians(*_scene(5)[:4], torch.zeros(5, 4, 3), *_scene(5)[5:], 8, 8, sh_degree=2)


def test_native_rejects_bad_bins(native_module) -> None:
    inputs, bins = _binned(10, 0, torch.float32)
    with pytest.raises(RuntimeError, match="offsets must"):
        native_module.rasterize_fwd(
            *[t.detach() for t in inputs],
            torch.zeros(0),
            WIDTH,
            HEIGHT,
            16,
            bins.gaussian_ids,
            bins.offsets[:-1],
        )
    bad_ids = bins.gaussian_ids.clone()
    if bad_ids.numel():
        bad_ids[0] = 99
        with pytest.raises(RuntimeError, match="gaussian_ids must lie"):
            native_module.rasterize_fwd(
                *[t.detach() for t in inputs],
                torch.zeros(0),
                WIDTH,
                HEIGHT,
                16,
                bad_ids,
                bins.offsets,
            )


def test_cpu_rasterizer_matches_gsplat_on_gpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here: comparing with gsplat.rasterization needs a GPU")
    pytest.importorskip("gsplat")
    scene = _scene(300, seed=6)
    cpu = rasterize_gaussians(*scene, WIDTH, HEIGHT, background=torch.ones(3))
    gpu = rasterize_gaussians(
        *(t.cuda() for t in scene), WIDTH, HEIGHT, background=torch.ones(3, device="cuda")
    )
    for key in ("rgb", "alpha"):
        torch.testing.assert_close(getattr(gpu, key).cpu(), getattr(cpu, key), atol=1e-3, rtol=1e-3)
