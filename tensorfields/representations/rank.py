"""Component ranks of a factor decomposition (VM or CP): train or render with the first ``r``.

SlimmeRF grows ranks during training and cuts them at test time. Components above the rank are
*excluded*: their first factor is multiplied by 0, so they add nothing to the output and get no
gradient. (The official code scales them by 1e-6 instead; under Adam, which normalises gradient
size, such components would still move at full speed, unseen, so a zero mask is the faithful
reading of "rank r".) ``slim`` then drops them from the parameters for good.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RankedComponents:
    """Mixin for decompositions with ``components`` along dim 1 of every factor."""

    components: int
    _rank: int | None = None

    @property
    def rank(self) -> int:
        """Components in use (the first ``rank``); all of them unless set."""
        return self.components if self._rank is None else self._rank

    def set_rank(self, rank: int) -> None:
        if not 1 <= rank <= self.components:
            raise ValueError(f"rank must be in [1, {self.components}], got {rank}")
        self._rank = None if rank == self.components else rank

    def masked(self, factor: Tensor) -> Tensor:
        """``factor`` with the components above the rank zeroed (itself at full rank)."""
        if self._rank is None:
            return factor
        keep = torch.arange(self.components, device=factor.device) < self._rank
        return factor * keep.to(factor.dtype).view(1, -1, *([1] * (factor.dim() - 2)))

    @torch.no_grad()
    def slim_factors(self, factors: nn.ParameterList, rank: int) -> None:
        """Keep the first ``rank`` components of each factor, in its memory layout."""
        for factor in factors:
            layout = (
                torch.channels_last
                if factor.dim() == 4
                and factor.is_contiguous(memory_format=torch.channels_last)
                and factor.shape[3] > 1
                else torch.contiguous_format
            )
            # clone: a slice would keep (and save) the whole storage.
            factor.data = factor.data[:, :rank].clone(memory_format=layout)
