"""The shading head's input (features, view dirs, positional encodings): native vs reference."""

from __future__ import annotations

import pytest
import torch

from tensorfields.core._torch_impl import positional_encoding, shading_input_torch
from tensorfields.core.encoding import _ShadingInput, shading_input


def _inputs(n: int, features: int, dtype, device, spread: float = 3.0, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    f = (torch.randn(n, features, generator=gen, dtype=dtype) * spread).to(device)
    d = torch.nn.functional.normalize(torch.randn(n, 3, generator=gen, dtype=dtype), dim=1)
    return f.requires_grad_(), d.to(device)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bands", [(2, 2), (0, 0), (3, 1), (0, 4)])
@pytest.mark.parametrize("n", [0, 1, 700])
def test_native_matches_reference(native_module, device, dtype, bands, n) -> None:
    f, d = _inputs(n, 27, dtype, device)
    reference = shading_input_torch(f, d, *bands)
    native = _ShadingInput.apply(native_module, f, d, *bands, False)
    tol = {"atol": 2e-6, "rtol": 1e-5} if dtype == torch.float32 else {}
    torch.testing.assert_close(native, reference, **tol)
    grad = torch.randn_like(reference)
    (expected,) = torch.autograd.grad(reference, f, grad)
    (got,) = torch.autograd.grad(native, f, grad)
    torch.testing.assert_close(got, expected, **{"atol": 2e-5, "rtol": 1e-5} if tol else {})


@pytest.mark.parametrize("n", [0, 1, 700])
def test_bfloat16_output_is_the_rounded_float_one(native_module, n) -> None:
    """What the MLP's autocast would have cast to, written directly (CPU); the backward takes
    the bfloat16 gradient autocast hands back and returns float32 feature gradients."""
    f, d = _inputs(n, 27, torch.float32, "cpu")
    reference = shading_input_torch(f, d, 2, 2).to(torch.bfloat16)
    native = shading_input(f, d, 2, 2, dtype=torch.bfloat16)
    assert native.dtype == torch.bfloat16 and "ShadingInput" in type(native.grad_fn).__name__
    # The float values agree to ~2e-7 before rounding, so at most a last-bit difference.
    torch.testing.assert_close(native.float(), reference.float(), atol=1e-6, rtol=2**-8)
    assert (native != reference).sum() <= 0.01 * native.numel()
    grad = torch.randn(reference.shape).to(torch.bfloat16)
    (expected,) = torch.autograd.grad(reference, f, grad)
    (got,) = torch.autograd.grad(native, f, grad)
    assert got.dtype == torch.float32
    # The backward reads the bfloat16 sines and cosines (relative error 2^-9).
    torch.testing.assert_close(got, expected, atol=0.05, rtol=2**-7)


def test_bfloat16_reference_and_cuda_routes_cast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_BACKEND", "torch")
    f, d = _inputs(6, 4, torch.float32, "cpu")
    out = shading_input(f, d, 1, 1, dtype=torch.bfloat16)
    assert out.dtype == torch.bfloat16
    assert torch.equal(out, shading_input_torch(f, d, 1, 1).to(torch.bfloat16))


def test_float_sines_are_accurate_over_a_wide_range(native_module, device) -> None:
    # The CPU float path uses its own vectorised sine / cosine below |x| 8192 and libm above:
    # both within a few 1e-7 of the float64 truth, as PyTorch's own float sines are.
    x = torch.cat([torch.linspace(-9000, 9000, 200_001), torch.tensor([1e5, -3e7, 0.0])])
    f = x.reshape(-1, 1)
    d = torch.nn.functional.normalize(torch.ones(f.shape[0], 3), dim=1)
    out = native_module.shading_input_fwd(f.to(device), d.to(device), 1, 0).cpu().double()
    truth = positional_encoding(f.double(), 1)
    assert (out[:, 4:] - truth).abs().max() < 1e-6 * (1 + x.abs().double().max() / 1e4)


def test_non_finite_features_propagate(native_module) -> None:
    f = torch.tensor([[float("nan"), float("inf"), 1.0]])
    d = torch.tensor([[0.0, 0.0, 1.0]])
    native = native_module.shading_input_fwd(f, d, 2, 2)
    reference = shading_input_torch(f, d, 2, 2)
    assert torch.equal(native.isnan(), reference.isnan())
    torch.testing.assert_close(native[~native.isnan()], reference[~reference.isnan()])


def test_native_gradcheck(native_module, device) -> None:
    f, d = _inputs(5, 4, torch.float64, device, spread=1.0)

    def fn(features):
        return _ShadingInput.apply(native_module, features, d, 3, 2, False)

    assert torch.autograd.gradcheck(fn, (f,))


def test_public_op_layout_and_routing(native_module) -> None:
    f, d = _inputs(10, 27, torch.float32, "cpu")
    out = shading_input(f, d, 2, 2)
    assert out.shape == (10, 27 + 3 + 2 * 2 * 27 + 2 * 2 * 3)
    assert "ShadingInput" in type(out.grad_fn).__name__
    torch.testing.assert_close(out[:, :27], f.detach())
    torch.testing.assert_close(out[:, 27:30], d)
    # View dirs that need a gradient go to the reference, which gives them one.
    d.requires_grad_()
    out = shading_input(f, d, 2, 2)
    assert "ShadingInput" not in type(out.grad_fn).__name__
    assert torch.autograd.grad(out.sum(), d)[0].abs().sum() > 0


def test_bad_inputs_raise_clear_errors(native_module) -> None:
    f, d = _inputs(4, 5, torch.float32, "cpu")
    with pytest.raises(RuntimeError, match="view_dirs must be"):
        native_module.shading_input_fwd(f, d[:3], 2, 2)
    with pytest.raises(RuntimeError, match="frequency bands must lie in"):
        native_module.shading_input_fwd(f, d, -1, 2)
    out = native_module.shading_input_fwd(f, d, 2, 2)
    with pytest.raises(RuntimeError, match="out must have 34 columns, got 40"):
        native_module.shading_input_bwd(out, out, 5, 2, 1)
    with pytest.raises(RuntimeError, match="bfloat16 shading input needs float32 CPU"):
        native_module.shading_input_fwd(f.double(), d.double(), 2, 2, True)
