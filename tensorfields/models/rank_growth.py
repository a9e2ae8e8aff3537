"""SlimmeRF's Tensorial Rank Incrementation (TRaIn): when to give a factor model more rank."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RankGrowthConfig:
    """TRaIn (SlimmeRF, Yuan & Zhao 3DV 2024): ranks start low and grow during training."""

    enabled: bool = False
    """Grow ranks during training (the 'slimmerf' method); off: all components from the start."""
    density_start: int = 1
    """Density rank at the start."""
    density_step: int = 1
    """Density components added per increment."""
    appearance_start: int = 3
    """Appearance rank at the start."""
    appearance_step: int = 3
    """Appearance components added per increment."""
    threshold: float = 0.4
    """υ: ranks grow when the relative change of consecutive training losses
    |L(t-1) - L(t)| / L(t) exceeds this (the paper uses 0.2 on hard scenes)."""
    min_gap: int = 0
    """η: more than this many iterations between two increments (the official code's η: 0)."""


def should_grow(previous: float, loss: float, step: int, last_growth: int, cfg) -> bool:
    """The TRaIn rule for one iteration: ``previous`` is the last iteration's loss (negative:
    none yet; losses are never negative)."""
    if previous < 0 or step - last_growth <= cfg.min_gap:
        return False
    return abs(previous - loss) / max(loss, 1e-12) > cfg.threshold
