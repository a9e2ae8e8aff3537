"""The viewer's GUI panel: render mode, resolution, pause, training readout, model controls.

Model controls come from ``model.render_controls()`` only; the panel never knows which model it
shows. A control the user has not touched is not passed to ``render_with``, so the render
follows the model's own state (e.g. SlimmeRF's rank as it grows in training).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tensorfields.models.base import RenderControl
from tensorfields.viewer.render import MODES


def readout_text(
    step: int,
    max_steps: int | None,
    history: list[dict],
    rays_per_s: float | None,
    state: str,
) -> str:
    """Markdown lines: step, latest logged loss / PSNR (the trainer logs every 100 steps),
    latest validation PSNR, rays/s, and the state (training, paused, finished)."""
    logged = next((h for h in reversed(history) if "loss" in h), None)
    val = next((h for h in reversed(history) if "val_psnr" in h), None)
    total = f" / {max_steps}" if max_steps else ""
    lines = [f"**{state}** · step {step}{total}"]
    if logged is not None:
        lines.append(f"loss {logged['loss']:.4f} · PSNR {logged['psnr']:.2f} dB")
    if val is not None:
        lines.append(f"val PSNR {val['val_psnr']:.2f} dB (step {val['step']})")
    if rays_per_s:
        lines.append(f"{rays_per_s / 1000:.1f}K rays/s")
    return "  \n".join(lines)


class ControlPanel:
    """GUI elements shared by every browser; ``on_change`` runs when a render setting changes,
    ``on_pause(paused)`` when the pause button is pressed (training runs only)."""

    def __init__(
        self,
        gui,
        max_resolution: int,
        on_change: Callable[[], None],
        on_pause: Callable[[bool], None] | None,
    ) -> None:
        self._gui = gui
        self._on_change = on_change
        self.mode = gui.add_dropdown("Render mode", MODES, initial_value="rgb")
        self.resolution = gui.add_slider(
            "Max resolution", 64, 2048, 32, int(min(max(max_resolution, 64), 2048))
        )
        for handle in (self.mode, self.resolution):
            handle.on_update(lambda _: on_change())
        self.paused = False
        self.pause = None
        if on_pause is not None:
            self.pause = gui.add_button("Pause training", icon="player-pause")

            def toggle(_event) -> None:
                self.set_paused(not self.paused)
                on_pause(self.paused)

            self.pause.on_click(toggle)
        self.readout = gui.add_markdown("")
        self._chart = None
        self._chart_points = 0
        self._folder = gui.add_folder("Model controls", visible=False)
        self._signature: tuple = ()
        self._controls: dict[str, tuple[RenderControl, object]] = {}
        self._touched: set[str] = set()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        if self.pause is not None:
            self.pause.label = "Resume training" if paused else "Pause training"
            self.pause.icon = "player-play" if paused else "player-pause"

    def training_done(self) -> None:
        if self.pause is not None:
            self.pause.visible = False

    def show_progress(self, text: str, history: list[dict]) -> None:
        """Readout text, and the training PSNR chart once the trainer has logged any."""
        self.readout.content = text
        points = [(h["step"], h["psnr"]) for h in history if "psnr" in h]
        if len(points) == self._chart_points or len(points) < 1:
            return
        self._chart_points = len(points)
        steps = np.array([p[0] for p in points], dtype=np.float64)
        psnr = np.array([p[1] for p in points], dtype=np.float64)
        if self._chart is None:
            self._chart = self._gui.add_uplot(
                (steps, psnr),
                ({"label": "step"}, {"label": "train PSNR (dB)", "stroke": "#1f77b4"}),
                title="PSNR",
                scales={"x": {"time": False}},
                aspect=1.6,
            )
        else:
            self._chart.data = (steps, psnr)

    def control_values(self) -> dict[str, int]:
        """Values of the controls the user has set, clamped to their current ranges."""
        values = {}
        for name in self._touched & set(self._controls):
            control, handle = self._controls[name]
            values[name] = int(min(max(round(handle.value), control.minimum), control.maximum))
        return values

    def sync_controls(self, controls: list[RenderControl]) -> None:
        """Rebuild the model's controls when their set changes; untouched ones follow the
        model's current values."""
        signature = tuple((c.name, c.label, c.minimum, c.maximum) for c in controls)
        if signature != self._signature:
            self._rebuild(controls)
            self._signature = signature
            return
        for control in controls:
            if control.name not in self._touched:
                self._controls[control.name][1].value = control.value
            self._controls[control.name] = (control, self._controls[control.name][1])

    def _rebuild(self, controls: list[RenderControl]) -> None:
        for _, handle in self._controls.values():
            handle.remove()
        self._controls = {}
        self._touched &= {c.name for c in controls}
        with self._folder:
            for control in controls:
                self._controls[control.name] = (control, self._add_control(control))
        self._folder.visible = bool(controls)
        self._on_change()

    def _add_control(self, control: RenderControl):
        if control.maximum <= control.minimum:  # nothing to pick: show the value only
            return self._gui.add_number(control.label, control.value, disabled=True)
        handle = self._gui.add_slider(
            control.label, control.minimum, control.maximum, 1, control.value
        )

        def touched(event) -> None:
            if event.client is not None:  # the user, not the panel following the model
                self._touched.add(control.name)
                self._on_change()

        handle.on_update(touched)
        return handle
