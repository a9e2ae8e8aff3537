"""Procedural multi-identity articulated humans: monocular videos rendered on demand.

Capsule/ellipsoid bodies on a 15-joint skeleton, ray cast analytically (independently of the
Gaussian code, so avatar tests are not circular). World z up, bodies stand on z = 0 and face -y
at turn 0; one fixed camera per video looks along +y. See :mod:`.generate` (rendering and the
cache), :mod:`.layout` (files and reader).
"""

from tensorfields.data.humans.generate import (
    HumansParams,
    ensure_humans_dataset,
    fixed_camera,
    make_humans_dataset,
)
from tensorfields.data.humans.layout import FORMAT, SPLITS, load_humans_split
from tensorfields.data.humans.skeleton import humans_skeleton

__all__ = [
    "FORMAT",
    "SPLITS",
    "HumansParams",
    "ensure_humans_dataset",
    "fixed_camera",
    "humans_skeleton",
    "load_humans_split",
    "make_humans_dataset",
]
