"""``tf-make-dataset``: render a procedural dataset to a folder (no download needed).

``tf-make-dataset humans --out DIR`` writes the multi-identity humans dataset (see
:mod:`tensorfields.data.humans`); without ``--out`` it fills the cache that ``--scene humans``
reads. A thin shell over :func:`make_humans_dataset` / :func:`ensure_humans_dataset`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import tyro

from tensorfields.cli.errors import run_cli
from tensorfields.data.humans.generate import (
    HumansParams,
    ensure_humans_dataset,
    make_humans_dataset,
)

DEFAULTS = HumansParams()


@dataclass
class HumansArgs:
    """Render the procedural humans: identities walking in place and turning in front of a fixed
    camera (train / val / test frames) plus out-of-distribution poses (test_ood)."""

    out: Path | None = None
    """Folder to write (default: the cache that `tf-train --scene humans` uses)."""
    seed: int = DEFAULTS.seed
    """Random seed: the same seed and settings give identical files."""
    identities: int = DEFAULTS.n_identities
    """Number of identities (people)."""
    resolution: int = DEFAULTS.resolution
    """Image width and height in pixels."""
    train_frames: int = DEFAULTS.n_train_frames
    """Training frames per identity."""
    test_frames: int = DEFAULTS.n_test_frames
    """Held-out frames of the training motion per identity (split 'test')."""
    ood_frames: int = DEFAULTS.n_ood_frames
    """Out-of-distribution poses per identity (split 'test_ood')."""
    val_frames: int = DEFAULTS.n_val_frames
    """Validation frames per identity (split 'val')."""
    supersample: int = DEFAULTS.supersample
    """Sub-pixel rays per pixel along each axis (anti-aliasing)."""
    overwrite: bool = False
    """Replace --out if it already holds files."""


def make_humans(opts: HumansArgs) -> Path:
    params = {
        "seed": opts.seed,
        "n_identities": opts.identities,
        "resolution": opts.resolution,
        "n_train_frames": opts.train_frames,
        "n_test_frames": opts.test_frames,
        "n_ood_frames": opts.ood_frames,
        "n_val_frames": opts.val_frames,
        "supersample": opts.supersample,
    }
    if opts.out is None:
        return ensure_humans_dataset(**params)
    try:
        return make_humans_dataset(opts.out, overwrite=opts.overwrite, **params)
    except FileExistsError:  # a user error: one line, not a traceback
        raise ValueError(
            f"{opts.out} already exists and is not empty; pass --overwrite to replace it"
        ) from None


def main(args: list[str]) -> None:
    opts = tyro.extras.subcommand_cli_from_dict(
        {"humans": HumansArgs}, args=args, prog="tf-make-dataset"
    )
    folder = make_humans(opts)
    print(f"ready: {folder}")


def entrypoint(argv: list[str] | None = None) -> None:
    """Console-script entry (``argv`` defaults to the command line)."""
    run_cli(main, sys.argv[1:] if argv is None else list(argv))


if __name__ == "__main__":
    entrypoint()
