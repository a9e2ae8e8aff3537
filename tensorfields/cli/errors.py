"""User-caused errors end a command with one clear line, not a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from tensorfields.data.errors import DataError, DataNotFoundError
from tensorfields.pipeline.checkpoint import CheckpointError
from tensorfields.pipeline.host_allocator import keep_freed_memory

USER_ERRORS = (DataError, DataNotFoundError, CheckpointError, FileNotFoundError, ValueError)


def run_cli(main: Callable[[list[str]], None], args: list[str]) -> None:
    """Run ``main(args)``; user errors print ``error: ...`` and exit 2 (TF_DEBUG=1 re-raises).

    Every command keeps freed host memory in the process (faster CPU steps and renders)."""
    keep_freed_memory()
    try:
        main(args)
    except USER_ERRORS as exc:
        if os.environ.get("TF_DEBUG"):
            raise
        message = str(exc)
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted; resume with --resume <run dir>", file=sys.stderr)
        raise SystemExit(130) from None
