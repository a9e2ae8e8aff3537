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
