"""The live web viewer (viser): ``tf-train --viewer`` and ``tf-viewer RUN_DIR``.

Importing this package does not import viser; :class:`~tensorfields.viewer.server.Viewer` does.
"""

from __future__ import annotations


class MissingViserError(ValueError):
    """The viewer's one dependency is not installed (a user error: one line, no traceback)."""


def import_viser():
    try:
        import viser
    except ImportError:
        raise MissingViserError(
            "the viewer needs viser, which is not installed: pip install viser "
            "(or pip install -e . in the tensorfields checkout)"
        ) from None
    return viser
