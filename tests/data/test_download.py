"""tf-download against tiny archives served from 127.0.0.1: every failure mode is a clear error."""

from __future__ import annotations

import hashlib
import io
import socket
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tensorfields.cli.download import entrypoint
from tensorfields.data.download import (
    NERF_SYNTHETIC_SCENES,
    DownloadError,
    SceneExistsError,
    download_nerf_synthetic,
    fetch_url,
    verify_archive,
)

FILES = {"transforms_train.json": b'{"frames": []}', "train/r_0.png": b"\x89PNG fake"}


def make_zip(members: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def scene_members(scenes=("lego", "chair"), top: str | None = "nerf_synthetic") -> dict:
    prefix = f"{top}/" if top else ""
    members = {f"{prefix}{s}/{name}": data for s in scenes for name, data in FILES.items()}
    members["__MACOSX/nerf_synthetic/lego/._transforms_train.json"] = b"junk"
    return members


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        route = self.server.routes.get(self.path)
        if route is None:
            self.send_error(404)
            return
        body, claimed, ctype = route
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if claimed is None else claimed))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    """Serve ``routes[path] = (body, claimed_length_or_None, content_type)`` on 127.0.0.1."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.routes = {}
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"

    def serve(path: str, body: bytes, claimed: int | None = None, ctype="application/zip") -> str:
        httpd.routes[path] = (body, claimed, ctype)
        return base + path

    yield serve
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def closed_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}/nerf_synthetic.zip"


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TF_DATA_DIR", str(tmp_path / "data"))


def scene_dir(tmp_path: Path, scene: str = "lego") -> Path:
    return tmp_path / "data" / "nerf_synthetic" / scene


def assert_scene(path: Path) -> None:
    for name, data in FILES.items():
        assert (path / name).read_bytes() == data


def test_download_success_unpacks_only_requested_scene(server, tmp_path):
    url = server("/nerf_synthetic.zip", make_zip(scene_members()))
    out = download_nerf_synthetic("lego", url=url, progress=True, timeout=5)
    assert out == [scene_dir(tmp_path)]
    assert_scene(scene_dir(tmp_path))
    assert not scene_dir(tmp_path, "chair").exists()
    leftovers = [p.name for p in (tmp_path / "data" / "nerf_synthetic").iterdir()]
    assert leftovers == ["lego"]  # no temp folders, no __MACOSX
    cache = tmp_path / "cache" / "downloads"
    assert list(cache.iterdir()) == []  # archive removed without --keep-archive, no .part


def test_all_and_top_level_layout(server, tmp_path):
    url = server("/flat.zip", make_zip(scene_members(scenes=NERF_SYNTHETIC_SCENES, top=None)))
    out = download_nerf_synthetic("all", url=url, progress=False, timeout=5)
    assert [p.name for p in out] == list(NERF_SYNTHETIC_SCENES)
    for path in out:
        assert_scene(path)


def test_refuses_overwrite_before_downloading(closed_url, tmp_path):
    existing = scene_dir(tmp_path)
    existing.mkdir(parents=True)
    (existing / "mine.txt").write_text("keep me")
    # The URL is dead: the refusal must come first, without touching the network.
    with pytest.raises(SceneExistsError, match="--overwrite") as info:
        download_nerf_synthetic("lego", url=closed_url, progress=False, timeout=5)
    assert str(existing) in str(info.value)
    assert (existing / "mine.txt").read_text() == "keep me"


def test_overwrite_replaces_scene(server, tmp_path):
    existing = scene_dir(tmp_path)
    existing.mkdir(parents=True)
    (existing / "stale.txt").write_text("old")
    url = server("/nerf_synthetic.zip", make_zip(scene_members()))
    download_nerf_synthetic("lego", url=url, overwrite=True, progress=False, timeout=5)
    assert not (existing / "stale.txt").exists()
    assert_scene(existing)
    assert [p.name for p in existing.parent.iterdir()] == ["lego"]


def test_keep_archive_then_reuse_cache_offline(server, closed_url, tmp_path):
    url = server("/nerf_synthetic.zip", make_zip(scene_members()))
    download_nerf_synthetic("lego", url=url, keep_archive=True, progress=False, timeout=5)
    cached = tmp_path / "cache" / "downloads" / "nerf_synthetic.zip"
    assert cached.is_file()
    # Second run: network dead, but the cached archive is used and kept.
    out = download_nerf_synthetic("chair", url=closed_url, progress=False, timeout=5)
    assert_scene(out[0])
    assert cached.is_file()


def test_truncated_download_detected(server, tmp_path):
    body = make_zip(scene_members())
    url = server("/nerf_synthetic.zip", body[:-50], claimed=len(body))
    with pytest.raises(DownloadError, match="truncated or wrong-size") as info:
        download_nerf_synthetic("lego", url=url, progress=False, timeout=5)
    assert f"received {len(body) - 50} bytes" in str(info.value)
    assert "--archive PATH" in str(info.value)
    assert not scene_dir(tmp_path).exists()
    assert list((tmp_path / "cache" / "downloads").iterdir()) == []  # no .part left behind


def _crc_broken_zip() -> bytes:
    data = bytearray(make_zip(scene_members(), compress=zipfile.ZIP_STORED))
    payload = FILES["transforms_train.json"]
    at = bytes(data).index(payload)
    data[at] ^= 0xFF  # stored data no longer matches its CRC
    return bytes(data)


@pytest.mark.parametrize(
    ("body", "message"),
    [(b"this is not a zip file at all" * 10, "not a valid zip"), (None, "CRC")],
    ids=["garbage", "bad-crc"],
)
def test_corrupt_zip_detected(server, tmp_path, body, message):
    url = server("/nerf_synthetic.zip", body if body is not None else _crc_broken_zip())
    with pytest.raises(DownloadError, match=message):
        download_nerf_synthetic("lego", url=url, keep_archive=True, progress=False, timeout=5)
    assert not scene_dir(tmp_path).exists()
    assert not (tmp_path / "cache" / "downloads" / "nerf_synthetic.zip").exists()


def test_unreachable_url_gives_clear_error(closed_url, tmp_path):
    with pytest.raises(DownloadError) as info:
        download_nerf_synthetic("lego", url=closed_url, progress=False, timeout=5)
    message = str(info.value)
    assert f"{closed_url} could not be reached (" in message
    assert "refused" in message.lower()
    assert "--archive PATH" in message
    assert "\n" not in message


def test_cli_unreachable_exits_1_with_one_message(closed_url, capsys):
    with pytest.raises(SystemExit) as info:
        entrypoint(["lego", "--url", closed_url, "--timeout", "5"])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "could not be reached" in err
    assert "Traceback" not in err


def test_cli_local_archive(tmp_path):
    archive = tmp_path / "nerf_synthetic.zip"
    archive.write_bytes(make_zip(scene_members()))
    data = tmp_path / "elsewhere"
    entrypoint(["lego", "--archive", str(archive), "--data-dir", str(data)])
    assert_scene(data / "nerf_synthetic" / "lego")
    assert archive.is_file()  # the user's file is never deleted


def test_local_archive_missing_scene(tmp_path):
    archive = tmp_path / "partial.zip"
    archive.write_bytes(make_zip(scene_members(scenes=("chair",))))
    with pytest.raises(DownloadError, match="no folder for scene 'lego'"):
        download_nerf_synthetic("lego", archive=archive)


@pytest.mark.parametrize(
    "evil",
    ["nerf_synthetic/lego/../../../evil.txt", "/tmp/tf_zip_slip_evil.txt", "..\\evil.txt"],
)
def test_zip_slip_member_rejected(tmp_path, evil):
    members = scene_members()
    members[evil] = b"owned"
    archive = tmp_path / "evil.zip"
    archive.write_bytes(make_zip(members))
    with pytest.raises(DownloadError, match="zip-slip"):
        download_nerf_synthetic("lego", archive=archive)
    assert not scene_dir(tmp_path).exists()
    assert not list(tmp_path.rglob("evil.txt"))
    assert not Path("/tmp/tf_zip_slip_evil.txt").exists()


def test_fetch_url_checks_sha256_and_html(server, tmp_path):
    body = b"x" * 1000
    url = server("/file.bin", body, ctype="application/octet-stream")
    with pytest.raises(DownloadError, match="sha256 mismatch"):
        fetch_url(url, tmp_path / "file.bin", sha256="0" * 64, progress=False, timeout=5)
    assert not list(tmp_path.iterdir())
    good = hashlib.sha256(body).hexdigest()
    assert fetch_url(url, tmp_path / "f.bin", sha256=good, progress=False).read_bytes() == body

    page = server("/quota", b"<html>quota exceeded</html>", ctype="text/html; charset=utf-8")
    with pytest.raises(DownloadError, match="HTML page"):
        fetch_url(page, tmp_path / "g.zip", progress=False, timeout=5)
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_url(url + "-missing", tmp_path / "h.zip", progress=False, timeout=5)


def test_verify_archive_accepts_good_zip(tmp_path):
    path = tmp_path / "ok.zip"
    path.write_bytes(make_zip(scene_members()))
    verify_archive(path)
