"""The web viewer: a viser server showing a model live from each browser's camera.

One background thread serves every browser: it re-renders when a camera, a render setting or
(while training) the model changed, small while the camera moves and at full size once it has
been still for a moment; model updates re-render at most every ``MODEL_INTERVAL`` seconds (or 4
frame times, so a slow frame costs training at most a fifth of its time), and while training
runs each frame is followed by as much training time as it took. The trainer plugs in
through :meth:`Viewer.training_hook`. Nothing here raises into the training loop: an error is
printed once and the viewer goes on; closing the browser never stops (nor pauses) training.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tensorfields.data.dataset import SceneSplit
from tensorfields.models.base import Model
from tensorfields.viewer import import_viser
from tensorfields.viewer.camera import browser_camera, camera_view
from tensorfields.viewer.panel import ControlPanel, readout_text
from tensorfields.viewer.render import ViewerRenderer, adaptive_size
from tensorfields.viewer.scene import add_scene_box, add_training_frusta, initial_view

STILL_SECONDS = 0.3  # a camera unchanged this long is still: render at full size
TARGET_SECONDS = 0.1  # frame time aimed at while the camera moves
MODEL_INTERVAL = 0.5  # re-render for model updates at most this often


@dataclass
class _ClientState:
    seen: tuple | None = None  # the latest camera and settings seen
    changed_at: float = 0.0
    key: tuple | None = None  # what the frame on screen shows
    size: int = 0
    version: int = -1
    seconds: float | None = None
    rendered_at: float = 0.0


class _ErrorLog:
    """Prints each distinct viewer error once, with its traceback, and carries on."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    def report(self, what: str, exc: BaseException) -> None:
        key = (what, f"{type(exc).__name__}: {exc}")
        if key in self._seen:
            return
        self._seen.add(key)
        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        print(f"viewer: {what} failed (the viewer keeps going):\n{trace}", file=sys.stderr)


class Viewer:
    """Serves ``model`` at http://host:port; ``training`` adds the pause button and readout."""

    def __init__(
        self,
        model: Model,
        aabb: Sequence[float],
        depth_range: tuple[float, float],
        train_split: SceneSplit | None = None,
        host: str = "127.0.0.1",
        port: int = 7007,
        max_resolution: int = 512,
        training: bool = True,
        max_frusta: int = 100,
    ) -> None:
        viser = import_viser()
        # A frame racing a closing tab is harmless: no warning for it.
        warnings.filterwarnings("ignore", "Queued a BackgroundImageMessage on a closed connection")
        self.renderer = ViewerRenderer(model, depth_range)
        self.access = self.renderer.access
        self._errors = _ErrorLog()
        self._clients: dict[int, _ClientState] = {}
        self._version = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._running = threading.Event()  # cleared while training is paused
        self._running.set()
        self._rays_per_s: float | None = None
        self._step_started = time.perf_counter()
        self._readout_at = 0.0
        self._progress: tuple[int, list[dict], int | None] = (0, [], None)
        self._training = False  # between training_hook() and training_finished()
        self._next_frame_at = 0.0  # while training runs, frames wait for their share
        self.server = viser.ViserServer(host=host, port=port, label="tensorfields", verbose=False)
        shown = "localhost" if host in ("", "0.0.0.0", "::") else host
        self.url = f"http://{shown}:{self.server.get_port()}"
        view = initial_view(aabb, train_split)
        self.server.scene.set_up_direction(tuple(view.up))
        camera = self.server.initial_camera
        camera.position, camera.look_at = view.position, view.look_at
        camera.up, camera.fov = view.up, view.fov
        add_scene_box(self.server.scene, aabb)
        self.panel = ControlPanel(
            self.server.gui, max_resolution, self._wake.set, self._pause if training else None
        )
        self.training_cameras = None  # the checkbox that shows them, if there are any
        if train_split is not None and len(train_split):
            frusta = add_training_frusta(self.server.scene, train_split, aabb, max_frusta)
            show = self.server.gui.add_checkbox("Training cameras", True)
            show.on_update(lambda _: setattr(frusta, "visible", show.value))
            self.training_cameras = show
        self.server.on_client_connect(self._connected)
        self.server.on_client_disconnect(self._disconnected)
        self._thread = threading.Thread(target=self._loop, name="tf-viewer", daemon=True)
        self._thread.start()
        print(f"Viewer running at {self.url} (open it in a browser)", flush=True)

    # -- browsers -------------------------------------------------------------------------------
    def _connected(self, client) -> None:
        self._clients[client.client_id] = _ClientState()
        client.camera.on_update(lambda _: self._wake.set())
        self._wake.set()

    def _disconnected(self, client) -> None:
        self._clients.pop(client.client_id, None)
        if not self.server.get_clients() and self.panel.paused:
            print("viewer: the last browser closed while training was paused; resuming")
            self.set_paused(False)

    def _loop(self) -> None:
        next_sync = 0.0
        while not self._stop.is_set():
            self._wake.wait(0.05)
            self._wake.clear()
            if time.monotonic() >= next_sync:
                self._guard("reading the model's render controls", self._sync_controls)
                next_sync = time.monotonic() + 1.0
            for client in self.server.get_clients().values():
                if self._stop.is_set():
                    break
                self._guard("rendering a frame", self._serve, client)

    def _guard(self, what: str, fn: Callable, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # the viewer must outlive any one failure
            if not self._stop.is_set():
                self._errors.report(what, exc)

    def _sync_controls(self) -> None:
        self.panel.sync_controls(self.renderer.controls())

    def _serve(self, client) -> None:
        state = self._clients.get(client.client_id)
        view = camera_view(client.camera)
        if state is None or view is None:
            return
        controls = self.panel.control_values()
        mode, max_size = self.panel.mode.value, int(self.panel.resolution.value)
        key = (view, mode, max_size, tuple(sorted(controls.items())))
        now = time.monotonic()
        if key != state.seen:
            state.seen, state.changed_at = key, now
        moving = now - state.changed_at < STILL_SECONDS
        size = adaptive_size(max_size, moving, state.seconds, TARGET_SECONDS, state.size)
        interval = max(MODEL_INTERVAL, 4 * (state.seconds or 0.0))
        model_changed = state.version != self._version and now - state.rendered_at >= interval
        if key == state.key and size <= state.size and not model_changed:
            return
        if self._training and self._running.is_set() and now < self._next_frame_at:
            return  # training's turn; the loop comes back
        version = self._version
        image = self.renderer.render(browser_camera(*view, long_side=size), mode, controls)
        client.scene.set_background_image(image, format="jpeg", jpeg_quality=90)
        state.key, state.size, state.version = key, size, version
        state.seconds, state.rendered_at = self.renderer.last_seconds, time.monotonic()
        self._next_frame_at = state.rendered_at + state.seconds

    # -- training -------------------------------------------------------------------------------
    def training_hook(self) -> Callable:
        """The ``on_step`` callback for :meth:`Trainer.train`. From this call until
        :meth:`training_finished`, the trainer holds the model except inside the hook, between
        two steps, where renders take their turn and a pause waits."""
        self.access.acquire_training()
        self._training = True
        self._step_started = time.perf_counter()
        return self._on_step

    def _on_step(self, trainer) -> None:
        step_seconds = time.perf_counter() - self._step_started
        self.access.release_training()
        try:
            self._guard("updating the training readout", self._record, trainer, step_seconds)
            self._version += 1
            self._wake.set()
            while not self._running.wait(0.1) and not self._stop.is_set():
                pass
        finally:
            self.access.acquire_training()
            self._step_started = time.perf_counter()

    def _record(self, trainer, step_seconds: float) -> None:
        rate = trainer.datamanager.rays_per_batch / max(step_seconds, 1e-9)
        self._rays_per_s = rate if self._rays_per_s is None else 0.9 * self._rays_per_s + 0.1 * rate
        self._progress = (trainer.step, trainer.history, trainer.config.trainer.max_iterations)
        now = time.monotonic()
        if now - self._readout_at >= 0.5:
            self._readout_at = now
            self.show_run(*self._progress, state="paused" if self.panel.paused else "training")

    def show_run(
        self, step: int, history: list[dict], max_steps: int | None = None, state: str = "finished"
    ) -> None:
        """Show a run's progress in the readout and chart (also for finished runs)."""
        self._progress = (step, history, max_steps)
        text = readout_text(step, max_steps, history, self._rays_per_s, state)
        self.panel.show_progress(text, history)

    def training_finished(self, trainer=None) -> None:
        """Training is over: renders no longer wait for steps; the pause button goes."""
        self.access.release_training()
        self._training = False
        self.panel.training_done()
        if trainer is not None:
            self._progress = (trainer.step, trainer.history, trainer.config.trainer.max_iterations)
        self._guard("updating the training readout", self.show_run, *self._progress)
        self._version += 1
        self._wake.set()

    def set_paused(self, paused: bool) -> None:
        """Pause or resume training (what the pause button does)."""
        self.panel.set_paused(paused)
        self._pause(paused)

    def _pause(self, paused: bool) -> None:
        (self._running.clear if paused else self._running.set)()
        state = "paused" if paused else "training"
        self._guard("updating the training readout", self.show_run, *self._progress, state)

    # -- lifetime -------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        """Block until Ctrl-C (or :meth:`stop` from another thread)."""
        try:
            while not self._stop.wait(0.5):
                pass
        finally:
            self.stop()

    def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._running.set()
        self.access.close()  # a render waiting for a step must not wait forever
        self._thread.join(timeout=10)
        self.server.stop()
