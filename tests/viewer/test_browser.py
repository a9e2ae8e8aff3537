"""The viewer in a real browser: headless Chromium draws the model's frames with WebGL.

Chromium runs with SwiftShader (software WebGL) and is driven over the DevTools protocol, so
screenshots are taken once the frame has arrived rather than after a guessed delay. The test
installs nothing: without Chromium (Debian package ``chromium``) or viser it is skipped.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from tensorfields.pipeline.trainer import Trainer
from tensorfields.viewer.camera import browser_camera

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1024, 768)


def _wait(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {seconds:.0f} s waiting for {what}")


class Browser:
    """Headless Chromium showing one page, screenshots over the DevTools protocol."""

    def __init__(self, url: str, profile: Path) -> None:
        from websockets.sync.client import connect  # a viser dependency

        args = [
            CHROMIUM, "--headless", "--no-sandbox", "--no-first-run", "--hide-scrollbars",
            "--use-angle=swiftshader", "--enable-unsafe-swiftshader",  # software WebGL
            f"--window-size={WINDOW[0]},{WINDOW[1]}", "--remote-debugging-port=0",
            f"--user-data-dir={profile}", url,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        active = profile / "DevToolsActivePort"
        _wait(lambda: active.is_file() and active.read_text().strip(), 60, "Chromium to start")
        port = active.read_text().split()[0]
        page = _wait(lambda: self._page(port), 30, "Chromium's page")
        self.socket = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        self._id = 0

    @staticmethod
    def _page(port: str) -> dict | None:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as reply:
            pages = [t for t in json.loads(reply.read()) if t["type"] == "page"]
        return pages[0] if pages else None

    def screenshot(self) -> np.ndarray:
        self._id += 1
        self.socket.send(json.dumps({"id": self._id, "method": "Page.captureScreenshot"}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self._id:
                png = base64.b64decode(message["result"]["data"])
                return iio.imread(io.BytesIO(png))[..., :3]

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def _grey(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Mean-pooled grey image of ``size`` (w, h) (the screenshot is a whole multiple)."""
    h, w = image.shape[0] // size[1], image.shape[1] // size[0]
    grey = image[: size[1] * h, : size[0] * w].astype(np.float64).mean(axis=2)
    return grey.reshape(size[1], h, size[0], w).mean(axis=(1, 3))


def _matches(shot: np.ndarray, frame: np.ndarray) -> float:
    """Correlation of screenshot and frame over the lower-left region that no GUI covers."""
    a, b = _grey(shot, frame.shape[1::-1]), frame.astype(np.float64).mean(axis=2)
    h, w = b.shape
    a, b = a[h // 3 :, : w * 3 // 5].ravel(), b[h // 3 :, : w * 3 // 5].ravel()
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 1 and b.std() > 1 else 0.0


def _screenshot_showing(browser: Browser, frame: np.ndarray, seconds: float) -> np.ndarray:
    """The first screenshot in which ``frame`` is drawn (once the viewer has sent it)."""
    deadline = time.monotonic() + seconds
    best = -1.0
    while time.monotonic() < deadline:
        shot = browser.screenshot()
        best = max(best, _matches(shot, frame))
        if best > 0.9:
            return shot
        time.sleep(0.3)
    pytest.fail(f"the frame never showed in the browser (best correlation {best:.2f})")


@pytest.fixture
def viewer(tiny_config, blocks_scene, tmp_path):
    """A tiny tensorf-vm (200 steps on blocks: the blocks show) served at 127.0.0.1."""
    if CHROMIUM is None:
        pytest.skip("Chromium not on PATH (Debian: apt-get install chromium): no browser test")
    pytest.importorskip("viser", reason="viser not installed (pip install viser)")
    from tensorfields.viewer.server import Viewer

    config = tiny_config("tensorf-vm", max_iterations=200, checkpoint_every=0)
    trainer = Trainer(config, tmp_path / "run", blocks_scene)
    trainer.train()
    served = Viewer(trainer.model, config.model.aabb, blocks_scene.depth_range,
                    train_split=blocks_scene.train, port=0, max_resolution=256,
                    training=False)  # fmt: skip
    yield served
    served.stop()


def test_browser_draws_the_scene_from_each_pose(viewer, blocks_scene, tmp_path) -> None:
    assert viewer.url.startswith("http://127.0.0.1:")
    centre = np.zeros(3)
    positions = [blocks_scene.train.cameras.c2w[i, :3, 3].double().numpy() for i in (0, 20)]
    viewer.server.initial_camera.position = positions[0]
    viewer.server.initial_camera.look_at = centre
    browser = Browser(viewer.url, tmp_path / "chromium")
    try:
        client = _wait(lambda: list(viewer.server.get_clients().values()), 60, "the browser")[0]
        shots = []
        for position in positions:
            client.camera.position, client.camera.look_at = position, centre  # server side
            camera = client.camera
            view = browser_camera(camera.position, camera.wxyz, camera.fov, camera.aspect, 256)
            shot = _screenshot_showing(browser, viewer.renderer.render(view), seconds=90)
            iio.imwrite(tmp_path / f"shot_{len(shots)}.png", shot)
            assert shot.astype(np.float64).std() > 20  # not blank
            shots.append(shot)
        difference = np.abs(shots[0].astype(int) - shots[1].astype(int)).mean()
        assert difference > 5, "the two camera poses gave the same picture"
    finally:
        browser.close()
    # A closed tab leaves the viewer serving.
    _wait(lambda: not viewer.server.get_clients(), 30, "the closed browser to disconnect")
    assert viewer._thread.is_alive()
