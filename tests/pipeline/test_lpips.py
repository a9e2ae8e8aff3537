"""LPIPS loader and network, with random weights of the official layout served from 127.0.0.1."""

from __future__ import annotations

import functools
import shutil
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
import torch.nn.functional as F

from tensorfields.pipeline.lpips import LIN_FILE, LPIPS, VGG16_FILE, load_lpips, lpips_distance

VGG_CONVS = [[(0, 3, 64), (2, 64, 64)], [(5, 64, 128), (7, 128, 128)]]
VGG_CONVS += [[(10, 128, 256), (12, 256, 256), (14, 256, 256)]]
VGG_CONVS += [[(17, 256, 512), (19, 512, 512), (21, 512, 512)]]
VGG_CONVS += [[(24, 512, 512), (26, 512, 512), (28, 512, 512)]]
TAP_CHANNELS = (64, 128, 256, 512, 512)


def random_weights() -> tuple[dict, dict]:
    gen = torch.Generator().manual_seed(0)
    vgg = {}
    for block in VGG_CONVS:
        for index, cin, cout in block:
            std = (2.0 / (9 * cin)) ** 0.5
            vgg[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * std
            vgg[f"features.{index}.bias"] = 0.01 * torch.randn(cout, generator=gen)
    vgg["classifier.6.bias"] = torch.zeros(1000)  # present in the real file; must be ignored
    lin = {
        f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen)
        for i, c in enumerate(TAP_CHANNELS)
    }
    return vgg, lin


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    vgg, lin = random_weights()
    torch.save(vgg, folder / VGG16_FILE)
    torch.save(lin, folder / LIN_FILE)
    return folder, vgg, lin


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server(weights):
    handler = functools.partial(_QuietHandler, directory=str(weights[0]))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield {VGG16_FILE: f"{base}/{VGG16_FILE}", LIN_FILE: f"{base}/{LIN_FILE}"}
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_urls() -> dict[str, str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return {name: f"http://127.0.0.1:{port}/{name}" for name in (VGG16_FILE, LIN_FILE)}


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("TF_CACHE_DIR", str(tmp_path / "tf_cache"))


def reference_lpips(vgg: dict, lin: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LPIPS written out functionally from the raw state dicts (no module, no key mapping)."""
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)

    def taps(h):
        h = (h - shift) / scale
        out = []
        for b, block in enumerate(VGG_CONVS):
            if b:
                h = F.max_pool2d(h, 2)
            for index, _, _ in block:
                w, bias = vgg[f"features.{index}.weight"], vgg[f"features.{index}.bias"]
                h = F.relu(F.conv2d(h, w, bias, padding=1))
            out.append(h)
        return out

    total = torch.zeros(x.shape[0])
    for k, (a, b) in enumerate(zip(taps(x), taps(y), strict=True)):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total += ((a - b) ** 2 * lin[f"lin{k}.model.1.weight"]).sum(1).mean((1, 2))
    return total


def images(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(32, 32, 3, generator=gen)
    y = (x + 0.2 * torch.randn(32, 32, 3, generator=gen)).clamp(0, 1)
    return x, y


def test_load_lpips_downloads_and_computes(server, weights, tmp_path, capsys):
    cache = tmp_path / "lpips_cache"
    model = load_lpips("cpu", cache_dir=cache, urls=server, timeout=10)
    assert isinstance(model, LPIPS)
    assert (cache / VGG16_FILE).is_file() and (cache / LIN_FILE).is_file()
    assert not list(cache.glob("*.part"))
    assert "LPIPS skipped" not in capsys.readouterr().err

    x, y = images()
    assert lpips_distance(model, x, x) == 0.0
    d = lpips_distance(model, x, y)
    assert d > 0.0
    _, vgg, lin = weights
    nchw = [img.permute(2, 0, 1)[None] * 2 - 1 for img in (x, y)]
    assert d == pytest.approx(reference_lpips(vgg, lin, *nchw).item(), rel=1e-4)
    # Batched NCHW forward agrees with the per-image helper.
    batch = model(torch.cat([nchw[0], nchw[1]]), torch.cat([nchw[1], nchw[1]]))
    assert batch.shape == (2,)
    assert batch[0].item() == pytest.approx(d, rel=1e-5) and batch[1].item() == 0.0


def test_cached_weights_need_no_network(server, closed_urls, tmp_path):
    cache = tmp_path / "lpips_cache"
    assert load_lpips("cpu", cache_dir=cache, urls=server, progress=False) is not None
    assert load_lpips("cpu", cache_dir=cache, urls=closed_urls) is not None


def test_default_cache_dir_and_torch_hub_checkpoint(weights, closed_urls, tmp_path):
    folder = weights[0]
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    shutil.copy(folder / VGG16_FILE, hub / VGG16_FILE)
    default = tmp_path / "tf_cache" / "lpips"  # $TF_CACHE_DIR/lpips
    default.mkdir(parents=True)
    shutil.copy(folder / LIN_FILE, default / LIN_FILE)
    assert load_lpips("cpu", urls=closed_urls) is not None


def test_unreachable_returns_none_with_one_line(closed_urls, tmp_path, capsys):
    cache = tmp_path / "lpips_cache"
    assert load_lpips("cpu", cache_dir=cache, urls=closed_urls, timeout=5) is None
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    line = lines[0]
    assert line.startswith(f"LPIPS skipped: could not download {VGG16_FILE} (")
    assert "refused" in line.lower()
    assert line.endswith(f"place it in {cache} to enable LPIPS")
    assert captured.out == ""


def test_bad_files_return_none(weights, tmp_path, closed_urls, capsys):
    cache = tmp_path / "lpips_cache"
    cache.mkdir()
    (cache / VGG16_FILE).write_bytes(b"torn download")
    shutil.copy(weights[0] / LIN_FILE, cache / LIN_FILE)
    assert load_lpips("cpu", cache_dir=cache, urls=closed_urls) is None
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "could not read" in err[0] and VGG16_FILE in err[0]

    torch.save({"lin0.model.1.weight": torch.ones(1, 3, 1, 1)}, cache / LIN_FILE)
    shutil.copy(weights[0] / VGG16_FILE, cache / VGG16_FILE)
    assert load_lpips("cpu", cache_dir=cache, urls=closed_urls) is None
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "do not fit" in err[0]


def test_unknown_url_key_is_an_error():
    with pytest.raises(ValueError, match="unknown LPIPS weight file"):
        load_lpips("cpu", urls={"alex.pth": "http://127.0.0.1:1/alex.pth"})
