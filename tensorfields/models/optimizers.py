"""Several optimizers that the trainer drives as one."""

from __future__ import annotations

import torch


class OptimizerSet:
    """One optimizer per parameter, as gsplat's densification strategies expect (they replace a
    parameter and its Adam moments together), presented to the trainer as a single optimizer:
    ``param_groups``, ``zero_grad``, ``step``, ``state_dict`` and ``load_state_dict``."""

    def __init__(self, optimizers: dict[str, torch.optim.Optimizer]):
        self.optimizers = optimizers

    @property
    def param_groups(self) -> list[dict]:
        return [group for opt in self.optimizers.values() for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.optimizers.values():
            opt.step()

    def state_dict(self) -> dict:
        return {name: opt.state_dict() for name, opt in self.optimizers.items()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != set(self.optimizers):
            expected = sorted(self.optimizers)
            raise KeyError(f"optimizer state for {sorted(state)}, expected {expected}")
        for name, opt in self.optimizers.items():
            opt.load_state_dict(state[name])


def _contiguous_view(t: torch.Tensor) -> torch.Tensor:
    """A contiguous view of a channels_last ``(1, C, H, W)`` tensor (its ``(1, H, W, C)``
    permutation, same storage); other tensors as they are."""
    if (
        t.dim() == 4
        and not t.is_contiguous()
        and t.is_contiguous(memory_format=torch.channels_last)
    ):
        return t.permute(0, 2, 3, 1)
    return t


class DenseAdam(torch.optim.Adam):
    """Fused Adam that hands channels_last factors (TensoRF's planes) to the fused kernel as
    contiguous views of the same memory: the kernel runs on contiguous tensors only, and copies
    every other one in and out each step (about as long as the update itself on a lego grid).
    Elementwise, so a permuted view updates the same numbers; the state is Adam's, so
    checkpoints load in either. Settings the plain path does not cover go to ``Adam.step``."""

    def __init__(self, params, **kwargs):
        super().__init__(params, fused=True, **kwargs)

    @torch.no_grad()
    def step(self, closure=None):
        flags = ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay")
        if closure is not None or any(
            any(g.get(f) for f in flags) or isinstance(g["lr"], torch.Tensor)
            for g in self.param_groups
        ):
            return super().step(closure)
        for group in self.param_groups:
            tensors: list[list[torch.Tensor]] = [[], [], [], [], []]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:  # as Adam initialises its fused state
                    state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                group_of_p = (p, p.grad, state["exp_avg"], state["exp_avg_sq"])
                if len({t.stride() for t in group_of_p}) == 1:  # one layout: view them alike
                    group_of_p = tuple(_contiguous_view(t) for t in group_of_p)
                for dst, t in zip(tensors, (*group_of_p, state["step"]), strict=True):
                    dst.append(t)
            if not tensors[0]:
                continue
            params, grads, exp_avgs, exp_avg_sqs, steps = tensors
            beta1, beta2 = group["betas"]
            torch._foreach_add_(steps, 1)
            torch._fused_adam_(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                [],
                steps,
                amsgrad=False,
                lr=group["lr"],
                beta1=beta1,
                beta2=beta2,
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=False,
                grad_scale=None,
                found_inf=None,
            )
        return None
