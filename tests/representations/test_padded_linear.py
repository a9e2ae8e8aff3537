"""Padded BLAS shapes in the shading head: same values and gradients as the plain layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tensorfields.core._torch_impl import shading_input_torch
from tensorfields.representations.padded_linear import (
    linear_with_padded_input_grad,
    linear_with_padded_rows,
)
from tensorfields.representations.shading import MLPFeaHead


def _grads(fn, x, layer):
    out = fn(x, layer)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    params = [x, *layer.parameters()]
    return out, torch.autograd.grad(out, params, grad)


def _plain(x, layer, *_):
    return layer(x)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(
    ("fn", "in_features", "out_features"),
    [(linear_with_padded_rows, 16, 3), (linear_with_padded_input_grad, 150, 12)],
)
def test_same_values_and_gradients_as_the_layer(fn, in_features, out_features, bias):
    torch.manual_seed(0)
    layer = nn.Linear(in_features, out_features, bias=bias).double()
    x = torch.randn(37, in_features, dtype=torch.float64, requires_grad=True)
    out, grads = _grads(fn, x, layer)
    ref, ref_grads = _grads(_plain, x, layer)
    assert out.shape == ref.shape == (37, out_features)
    torch.testing.assert_close(out, ref)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


def test_padded_input_grad_is_a_valid_autograd_function():
    layer = nn.Linear(10, 4).double()
    x = torch.randn(6, 10, dtype=torch.float64, requires_grad=True)
    params = (x, layer.weight, layer.bias)
    assert torch.autograd.gradcheck(
        lambda x, w, b: linear_with_padded_input_grad(x, layer_of(w, b)), params
    )


def layer_of(weight, bias):
    """A Linear whose parameters are the given tensors (for gradcheck)."""
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    layer.weight, layer.bias = weight, bias
    return layer


def test_plain_layer_where_padding_cannot_help():
    layer = nn.Linear(16, 8)
    x = torch.randn(5, 16, requires_grad=True)
    assert linear_with_padded_input_grad(x, layer).grad_fn.name() == layer(x).grad_fn.name()
    assert linear_with_padded_rows(x, layer).shape == (5, 8)
    wide = nn.Linear(10, 8)
    y = torch.randn(5, 10)  # needs no gradient: nothing to pad
    assert linear_with_padded_input_grad(y, wide).grad_fn.name() == wide(y).grad_fn.name()
    z = torch.randn(5, 10, requires_grad=True)
    assert "Padded" in linear_with_padded_input_grad(z, wide).grad_fn.name()
    with torch.autocast("cpu", torch.bfloat16):  # the custom backward would miss its casts
        assert "Padded" not in linear_with_padded_input_grad(z, wide).grad_fn.name()


def test_shading_head_matches_its_sequential_layers():
    torch.manual_seed(0)
    head = MLPFeaHead(27, 2, 2, 32).double()
    features = torch.randn(50, 27, dtype=torch.float64, requires_grad=True)
    view_dirs = torch.nn.functional.normalize(torch.randn(50, 3, dtype=torch.float64), dim=-1)
    out = head(features, view_dirs)
    ref = torch.sigmoid(head.mlp(shading_input_torch(features, view_dirs, 2, 2))).float()
    torch.testing.assert_close(out, ref)
    grad = torch.randn_like(out)
    params = [features, *head.parameters()]
    got = torch.autograd.grad(out, params, grad)
    want = torch.autograd.grad(ref, params, grad)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)
