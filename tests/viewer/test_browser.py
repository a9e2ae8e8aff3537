"""The viewer in a real browser: headless Chromium draws the model's frames with WebGL; and the
viewer's server side without a browser (the training hook, ``tf-train --viewer``, ``tf-viewer``).

Chromium runs with SwiftShader (software WebGL) and is driven over the DevTools protocol, so
screenshots are taken once the frame has arrived rather than after a guessed delay. The tests
install nothing: without Chromium (Debian package ``chromium``) or viser they are skipped.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import imageio.v3 as iio
import numpy as np
import pytest

from tensorfields.pipeline.trainer import Trainer
from tensorfields.viewer.camera import browser_camera

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WINDOW = (1024, 768)


def _wait(condition, seconds: float, what: str):
    """The first result of ``condition()`` that is neither None nor False."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value is not None and value is not False:
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
        self.socket = None
        self._id = 0
        try:
            active = profile / "DevToolsActivePort"
            _wait(lambda: active.is_file() and (active.read_text() or None), 60, "Chromium")
            port = active.read_text().split()[0]
            page = _wait(lambda: self._page(port), 30, "Chromium's page")
            self.socket = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _page(port: str) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as reply:
                pages = [t for t in json.loads(reply.read()) if t["type"] == "page"]
        except OSError:  # not listening yet
            return None
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
        if self.socket is not None:
            self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def _grey(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Mean-pooled grey image of ``size`` (w, h) (the screenshot is a whole multiple)."""
    h, w = image.shape[0] // size[1], image.shape[1] // size[0]
    grey = image[: size[1] * h, : size[0] * w].astype(np.float64).mean(axis=2)
    return grey.reshape(size[1], h, size[0], w).mean(axis=(1, 3))


def _matches(shot: np.ndarray, frame: np.ndarray) -> float:
    """How well the screenshot shows the frame, over the lower-left region that no GUI covers:
    their correlation, lowered when the screenshot has less contrast (a frame still fading in)."""
    a, b = _grey(shot, frame.shape[1::-1]), frame.astype(np.float64).mean(axis=2)
    h, w = b.shape
    a, b = a[h // 3 :, : w * 3 // 5].ravel(), b[h // 3 :, : w * 3 // 5].ravel()
    if a.std() < 1 or b.std() < 1:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1]) * min(a.std() / b.std(), 1.0)


def _screenshot_showing(browser: Browser, viewer, client, seconds: float, failed: Path):
    """The first screenshot that shows the frame of the browser's camera as the server knows it
    (re-rendered whenever that changes: the browser may still be applying a pose); the last one
    goes to ``failed`` if none does."""
    deadline = time.monotonic() + seconds
    best, key = -1.0, None
    while time.monotonic() < deadline:
        camera = client.camera
        if key != (now := (tuple(camera.position), tuple(camera.wxyz), camera.fov, camera.aspect)):
            key, frame = now, viewer.renderer.render(browser_camera(*now, long_side=256))
        shot = browser.screenshot()
        score = _matches(shot, frame)
        if score > 0.8:
            return shot
        best = max(best, score)
        time.sleep(0.3)
    iio.imwrite(failed, shot)
    iio.imwrite(failed.with_name("expected.png"), frame)
    pytest.fail(f"the frame never showed in the browser (best match {best:.2f}; see {failed})")


def _changed(browser: Browser, before: np.ndarray) -> np.ndarray | None:
    """A screenshot that differs from ``before``, or None."""
    shot = browser.screenshot()
    return shot if np.abs(shot.astype(int) - before).mean() > 0.5 else None


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
    # Two training cameras' places, pulled back; frusta hidden, so only the frame shows there.
    positions = [1.3 * blocks_scene.train.cameras.c2w[i, :3, 3].double().numpy() for i in (0, 20)]
    viewer.training_cameras.value = False
    browser = Browser(viewer.url, tmp_path / "chromium")
    try:
        clients = viewer.server.get_clients
        client = _wait(lambda: next(iter(clients().values()), None), 60, "the browser")
        shots = []
        for position in positions:
            client.camera.position, client.camera.look_at = position, centre  # server side
            failed = tmp_path / "failed_screenshot.png"
            shot = _screenshot_showing(browser, viewer, client, 90, failed)
            iio.imwrite(tmp_path / f"shot_{len(shots)}.png", shot)
            assert shot.astype(np.float64).std() > 20  # not blank (and it shows the frame)
            shots.append(shot)
        difference = np.abs(shots[0].astype(int) - shots[1].astype(int)).mean()
        assert difference > 5, "the two camera poses gave the same picture"
        viewer.training_cameras.value = True  # the frusta, with their thumbnails, appear
        with_frusta = _wait(lambda: _changed(browser, shots[1]), 30, "the training cameras")
        iio.imwrite(tmp_path / "shot_frusta.png", with_frusta)
    finally:
        browser.close()
    # A closed tab leaves the viewer serving.
    _wait(lambda: not viewer.server.get_clients(), 30, "the closed browser to disconnect")
    assert viewer._thread.is_alive()


# -- the server without a browser: the training hook, the commands ------------------------------
def _needs_viser() -> None:
    pytest.importorskip("viser", reason="viser not installed (pip install viser)")


def test_training_under_the_viewer_pauses_and_resumes(tiny_config, blocks_scene, tmp_path) -> None:
    _needs_viser()
    from tensorfields.viewer.server import Viewer

    config = tiny_config("tensorf-vm", max_iterations=40, checkpoint_every=0)
    trainer = Trainer(config, tmp_path / "run", blocks_scene)
    viewer = Viewer(trainer.model, config.model.aabb, blocks_scene.depth_range, port=0)
    camera = browser_camera((0.0, -4.0, 0.0), (0.7071068, -0.7071068, 0, 0), 0.8, 1.0, 16)
    hook = viewer.training_hook()
    thread = threading.Thread(target=trainer.train, kwargs={"on_step": hook})
    try:
        thread.start()
        _wait(lambda: trainer.step >= 3, 60, "three steps")
        assert viewer.renderer.render(camera).shape == (16, 16, 3)  # between two steps
        viewer.set_paused(True)
        time.sleep(0.3)
        paused_at = trainer.step
        assert viewer.renderer.render(camera).shape == (16, 16, 3)  # renders go on
        time.sleep(0.5)
        assert trainer.step == paused_at and "paused" in viewer.panel.readout.content
        # The last browser tab closing resumes training (there is nobody left to resume it).
        viewer._disconnected(SimpleNamespace(client_id=0))
        assert not viewer.panel.paused
        thread.join(timeout=120)
        assert not thread.is_alive() and trainer.step == 40
        viewer.training_finished(trainer)
        assert "finished" in viewer.panel.readout.content and "step 40 / 40" in (
            viewer.panel.readout.content
        )
        assert viewer.renderer.render(camera).shape == (16, 16, 3)
    finally:
        viewer.stop()
        thread.join(timeout=60)


def test_tf_train_viewer_then_tf_viewer(tmp_path, capsys) -> None:
    _needs_viser()
    from tensorfields.cli import train as train_cli
    from tensorfields.cli import viewer as viewer_cli

    out = tmp_path / "outputs"
    args = ["--scene", "blocks", "--downscale", "4", "--trainer.max-iterations", "3",
            "--trainer.batch-size", "256", "--trainer.eval-every", "0",
            "--trainer.final-eval-every", "0", "--trainer.device", "cpu",
            "--model.voxels-init", "4096", "--output-dir", str(out), "--viewer",
            "--viewer.port", "0"]  # fmt: skip
    train_cli.main(args)
    printed = capsys.readouterr().out
    assert "Viewer running at http://127.0.0.1:" in printed
    assert "Training finished; stopping the viewer" in printed
    (run_dir,) = (out / "blocks" / "tensorf-vm").iterdir()
    viewer = viewer_cli.open_run(viewer_cli.ViewerArgs(run_dir, port=0, device="cpu"))
    try:
        assert "step 3" in viewer.panel.readout.content
        assert viewer.url.startswith("http://127.0.0.1:")
    finally:
        viewer.stop()


def test_viewer_errors_are_one_line(tmp_path, capsys, monkeypatch) -> None:
    from tensorfields.cli import train as train_cli
    from tensorfields.cli import viewer as viewer_cli
    from tensorfields.cli.errors import run_cli

    with pytest.raises(SystemExit) as info:
        run_cli(viewer_cli.main, [str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"{tmp_path} is not a tf-train run directory: missing config.yaml" in err
    monkeypatch.setitem(sys.modules, "viser", None)  # as if not installed
    with pytest.raises(SystemExit) as info:
        run_cli(train_cli.main, ["--scene", "blocks", "--viewer"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "pip install viser" in err and "Traceback" not in err
