"""Viewer frames: a model rendered from any camera in one of the render modes (no viser here).

Renders run on the viewer's thread while the trainer steps on its own, so the two take turns on
the model through :class:`ModelAccess`: a render waits for the step in flight to end, and the
next step waits for the render. Renders run under ``torch.no_grad()`` in eval mode and inside
``model.render_with(values)``, which restores any state a control changed, so a render never
modifies what training sees.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from tensorfields.data.cameras import Cameras
from tensorfields.models.base import Model, RenderControl
from tensorfields.pipeline.images import colorize_depth, to_uint8

MODES = ("rgb", "depth", "accumulation")


class ModelAccess:
    """Training steps and renders take turns on one model. A waiting render goes first at the
    next step boundary, so the viewer's own throttling decides how much training it costs."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._holder: str | None = None
        self._renders_waiting = 0
        self._closed = False

    def close(self) -> None:
        """Renders waiting now or later give up (raise) instead of waiting for a step."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def acquire_training(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._holder is None and self._renders_waiting == 0)
            self._holder = "training"

    def release_training(self) -> None:
        with self._cond:
            if self._holder == "training":
                self._holder = None
                self._cond.notify_all()

    @contextmanager
    def training(self) -> Iterator[None]:
        """Held by the trainer's thread while it changes the model."""
        self.acquire_training()
        try:
            yield
        finally:
            self.release_training()

    @contextmanager
    def rendering(self) -> Iterator[None]:
        """Held by a render (or anything else that reads the model from the viewer's thread)."""
        with self._cond:
            self._renders_waiting += 1
            try:
                self._cond.wait_for(lambda: self._holder is None or self._closed)
            finally:
                self._renders_waiting -= 1
            if self._closed:
                raise RuntimeError("the viewer stopped")
            self._holder = "rendering"
        try:
            yield
        finally:
            with self._cond:
                self._holder = None
                self._cond.notify_all()


def adaptive_size(
    max_size: int,
    moving: bool,
    last_frame_seconds: float | None,
    target_seconds: float,
    last_size: int | None = None,
    min_size: int = 32,
) -> int:
    """Longer side of the next frame: ``max_size`` when the camera is still; while it moves,
    the size whose frame should take ``target_seconds``, given that the last frame, ``last_size``
    pixels on its longer side (default ``max_size``), took ``last_frame_seconds`` (render time
    grows with the pixel count, the square of the size). Never below ``min_size`` (nor above
    ``max_size``); a quarter of ``max_size`` before any frame was timed."""
    max_size = max(int(max_size), 1)
    min_size = min(min_size, max_size)
    if not moving:
        return max_size
    if not last_frame_seconds or last_frame_seconds <= 0:
        return max(min_size, max_size // 4)
    size = (last_size or max_size) * math.sqrt(target_seconds / last_frame_seconds)
    return int(min(max(size, min_size), max_size))


def _device_of(model: Model) -> torch.device:
    for tensor in [*model.parameters(), *model.buffers()]:
        return tensor.device
    return torch.device("cpu")


class ViewerRenderer:
    """Renders a model for the viewer: uint8 (h, w, 3) frames in a render mode, with the model's
    render controls applied; ``last_seconds`` is the time the last frame took."""

    def __init__(
        self,
        model: Model,
        depth_range: tuple[float, float],
        access: ModelAccess | None = None,
    ) -> None:
        self.model = model
        self.depth_range = depth_range
        self.access = access or ModelAccess()
        self.last_seconds: float | None = None

    def controls(self) -> list[RenderControl]:
        """The model's render controls, read between training steps."""
        with self.access.rendering():
            return self.model.render_controls()

    def render(
        self, cameras: Cameras, mode: str = "rgb", controls: dict[str, int] | None = None
    ) -> np.ndarray:
        """Camera 0 of ``cameras`` rendered in ``mode`` ('rgb', 'depth' or 'accumulation')."""
        if mode not in MODES:
            raise ValueError(f"unknown render mode {mode!r}; available: {', '.join(MODES)}")
        with self.access.rendering(), torch.no_grad():
            start = time.perf_counter()
            model = self.model
            was_training = model.training
            model.eval()
            try:
                with model.render_with(controls or {}):
                    out = model.render_camera(cameras.to(_device_of(model)), 0)
            finally:
                model.train(was_training)
            self.last_seconds = time.perf_counter() - start
        if mode == "rgb":
            image = out.rgb
        elif mode == "depth":
            image = colorize_depth(out.depth, out.accumulation, *self.depth_range)
        else:
            image = out.accumulation[..., None].expand(*out.accumulation.shape, 3)
        return to_uint8(image)
