"""Gaussian splatting against tensorf-vm on lego 400x400 under the same budget.

Run by hand:  python benchmarks/splat_lego.py --minutes 10   (CPU, the cpu presets)
         or:  python benchmarks/splat_lego.py --device cuda --preset paper --minutes 10
Both methods train for the same training-loop time, then score the test views r_0, r_20, ...,
r_180. "rays/s" counts pixels rendered per second of training (a splat step renders one whole
image). The final state column gives the Gaussian count. Prints one table.
"""

from __future__ import annotations

from common import compare_methods

if __name__ == "__main__":
    compare_methods(["splat", "tensorf-vm"], "splat_lego", __doc__)
