"""Strivec against tensorf-vm on lego 400x400 under the same CPU budget: PSNR and parameters.

Run by hand:  python benchmarks/strivec_lego.py --minutes 10
Both methods train with their cpu preset for the same training-loop time (Strivec's coarse
geometry stage and placement count as training time: they are part of its recipe), then score
the test views r_0, r_20, ..., r_180. Prints one table.
"""

from __future__ import annotations

from common import compare_methods

if __name__ == "__main__":
    compare_methods(["strivec", "tensorf-vm"], "strivec_lego", __doc__)
