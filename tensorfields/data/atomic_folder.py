"""Write a whole folder atomically: render it beside its place, then swap it in."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_folder_atomically(
    folder: Path, write: Callable[[Path], None], is_complete: Callable[[], bool]
) -> None:
    """``write`` into a temporary sibling of ``folder``, then rename it into place: an
    interrupted write leaves nothing behind, and an old ``folder`` (stale or incomplete) is
    replaced only once the new one is done. If another process renamed its copy in first,
    that copy is kept when ``is_complete()`` says it is whole."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    tmp.chmod(0o755)
    try:
        write(tmp)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=folder.parent))
            folder.rename(old / "stale")
            shutil.rmtree(old, ignore_errors=True)
        try:
            tmp.rename(folder)
        except OSError:  # another process finished first
            if not is_complete():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
