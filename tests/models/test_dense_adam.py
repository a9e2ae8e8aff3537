"""DenseAdam: fused Adam on channels_last factors through contiguous views, same numbers."""

from __future__ import annotations

import copy

import torch

from tensorfields.models.optimizers import DenseAdam


def _params() -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(1)
    plane = torch.randn(1, 8, 5, 7, generator=g).contiguous(memory_format=torch.channels_last)
    line = torch.randn(1, 8, 5, 1, generator=g)
    mlp = torch.randn(4, 3, generator=g)
    return [torch.nn.Parameter(t) for t in (plane, line, mlp)]


def _set_grads(params: list[torch.nn.Parameter], seed: int, skip_last: bool = False) -> None:
    g = torch.Generator().manual_seed(seed)
    for i, p in enumerate(params):
        # Gradients come in the parameter's layout (as autograd accumulates them).
        grad = torch.randn(p.shape, generator=g)
        if i == 0:
            grad = grad.contiguous(memory_format=torch.channels_last)
        p.grad = None if skip_last and i == 2 else grad


def test_matches_fused_adam_and_keeps_the_layout() -> None:
    ref, dense = _params(), _params()
    opt_ref = torch.optim.Adam(ref, lr=0.02, betas=(0.9, 0.99), fused=True)
    opt_dense = DenseAdam(dense, lr=0.02, betas=(0.9, 0.99))
    for step in range(4):
        for params in (ref, dense):
            _set_grads(params, 10 + step, skip_last=step == 1)
        opt_ref.step()
        opt_dense.step()
    for a, b in zip(ref, dense, strict=True):
        assert torch.equal(a, b)
    assert dense[0].is_contiguous(memory_format=torch.channels_last)
    assert int(opt_dense.state[dense[2]]["step"]) == 3  # no gradient at one step: not updated


def test_state_loads_into_adam_and_back() -> None:
    ref, dense = _params(), _params()
    opt_dense = DenseAdam(dense, lr=0.01, betas=(0.9, 0.99))
    _set_grads(dense, 3)
    opt_dense.step()
    opt_ref = torch.optim.Adam(ref, lr=0.01, betas=(0.9, 0.99), fused=True)
    opt_ref.load_state_dict(copy.deepcopy(opt_dense.state_dict()))  # not the same tensors
    with torch.no_grad():
        for a, b in zip(ref, dense, strict=True):
            a.copy_(b)
    for params in (ref, dense):
        _set_grads(params, 4)
    opt_ref.step()
    opt_dense.step()
    for a, b in zip(ref, dense, strict=True):
        assert torch.equal(a, b)


def test_other_settings_take_adams_own_step() -> None:
    ref, dense = _params(), _params()
    opt_ref = torch.optim.Adam(ref, lr=0.02, amsgrad=True, fused=True)
    opt_dense = DenseAdam(dense, lr=0.02, amsgrad=True)
    for params in (ref, dense):
        _set_grads(params, 5)
    opt_ref.step()
    opt_dense.step()
    assert "max_exp_avg_sq" in opt_dense.state[dense[0]]
    for a, b in zip(ref, dense, strict=True):
        assert torch.equal(a, b)
