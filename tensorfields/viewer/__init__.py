"""The live web viewer (viser): ``tf-train --viewer`` and ``tf-viewer RUN_DIR``.

Importing this package does not import viser; :class:`~tensorfields.viewer.server.Viewer` does.
"""
