"""``tf-download``: fetch NeRF-Synthetic scenes into the data folder.

A thin shell over ``tensorfields.data.download`` so the same logic is usable from Python; this
file only maps flags to arguments and turns ``DownloadError`` into one red line and exit code 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import tyro

from tensorfields.data.download import (
    DEFAULT_TIMEOUT,
    DownloadError,
    console,
    default_data_dir,
    download_nerf_synthetic,
)

Scene = Literal["all", "chair", "drums", "ficus", "hotdog", "lego", "materials", "mic", "ship"]


def main(
    scene: tyro.conf.Positional[Scene],
    data_dir: Path | None = None,
    url: str | None = None,
    archive: Path | None = None,
    overwrite: bool = False,
    keep_archive: bool = False,
    cache_dir: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[Path]:
    """Download a NeRF-Synthetic scene (or all) to <data-dir>/nerf_synthetic/<scene>.

    Args:
        scene: Scene to fetch, or "all".
        data_dir: Data root; default $TF_DATA_DIR or ./data.
        url: Download the archive from here instead of the built-in URL.
        archive: Use this already-downloaded nerf_synthetic.zip instead of downloading.
        overwrite: Replace scene folders that already exist.
        keep_archive: Keep the downloaded archive in the cache dir for later runs.
        cache_dir: Archive cache; default $TF_CACHE_DIR/downloads or
            ~/.cache/tensorfields/downloads.
        timeout: Seconds a connection or read may stall before giving up.
    """
    paths = download_nerf_synthetic(
        scene,
        data_dir if data_dir is not None else default_data_dir(),
        url=url,
        archive=archive,
        overwrite=overwrite,
        keep_archive=keep_archive,
        cache_dir=cache_dir,
        timeout=timeout,
    )
    for path in paths:
        console.print(f"[green]ready:[/green] {path}")
    return paths


def entrypoint(argv: list[str] | None = None) -> None:
    """Console-script entry; user-caused failures exit 1 with a single message, no traceback."""
    try:
        tyro.cli(main, args=argv)
    except (DownloadError, OSError) as err:  # OSError: e.g. an unwritable data or cache dir
        console.print(f"[red]error:[/red] {err}", markup=True, highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    entrypoint()
