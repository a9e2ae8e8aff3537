"""Fetch the NeRF-Synthetic scenes: stream the archive, verify it, unpack only what was asked.

Why this is more than ``urlretrieve`` + ``extractall``: the archive is ~1.7 GB behind a host
that sometimes answers with an HTML page or breaks off; a torn or wrong file must never be
mistaken for data, a malicious member must never write outside the data folder, and a user's
existing scene must never be silently replaced. Offline machines get one actionable message.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

console = Console(stderr=True)

DEFAULT_TIMEOUT = 30.0
"""Seconds a connect or a single read may stall before the download is abandoned."""

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchiveSource:
    """Where an archive lives, what it is called, and how to check it."""

    filename: str
    url: str
    page: str
    """Human-facing page to download from by hand when ``url`` cannot be used."""
    sha256: str | None
    root: str
    """Folder inside the archive that holds the scene folders."""


# The one table of download locations. nerf_synthetic.zip is the NeRF authors' Google Drive file
# (folder 128yBriW1IG_3NJ5Rp7APSTZsJqdJdfc1, linked from github.com/bmild/nerf); the
# drive.usercontent endpoint with confirm=t skips Drive's "too large to scan" interstitial.
# sha256 is None on purpose: we have not verified the official file's checksum, and a guessed one
# would reject the real data. Fill it in once measured from a known-good copy.
ARCHIVES: dict[str, ArchiveSource] = {
    "nerf_synthetic": ArchiveSource(
        filename="nerf_synthetic.zip",
        url=(
            "https://drive.usercontent.google.com/download"
            "?id=18JxhpWD-4ZmuFKLzKlAw-w5PpzZxXOcG&export=download&confirm=t"
        ),
        page="https://drive.google.com/drive/folders/128yBriW1IG_3NJ5Rp7APSTZsJqdJdfc1",
        sha256=None,
        root="nerf_synthetic",
    ),
}

NERF_SYNTHETIC_SCENES: tuple[str, ...] = (
    "chair",
    "drums",
    "ficus",
    "hotdog",
    "lego",
    "materials",
    "mic",
    "ship",
)


class DownloadError(RuntimeError):
    """A download, verification or unpacking step failed; the message says what and what to do."""


class UrlUnreachableError(DownloadError):
    """The server could not be contacted at all (offline, DNS, refused, timed out)."""

    def __init__(self, url: str, reason: object) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"{url} could not be reached ({reason})")


class SceneExistsError(DownloadError, FileExistsError):
    """A scene folder is already there and ``overwrite`` was not asked for."""


def default_data_dir() -> Path:
    """``$TF_DATA_DIR`` if set, else ``./data``."""
    return Path(os.environ.get("TF_DATA_DIR") or "data")


def default_cache_dir() -> Path:
    """``$TF_CACHE_DIR/downloads`` if set, else ``~/.cache/tensorfields/downloads``."""
    root = os.environ.get("TF_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "tensorfields"
    return base / "downloads"


def _progress_bar(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
    )


def fetch_url(
    url: str,
    dest: str | Path,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """Stream ``url`` to ``dest`` through ``dest.part``; rename only once size/sha256 check out.

    Raises ``UrlUnreachableError`` when no connection could be made and ``DownloadError`` for
    every other failure (HTTP error, HTML page instead of a file, broken-off or wrong-size
    transfer, checksum mismatch). The ``.part`` file never survives a failure.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    request = urllib.request.Request(url, headers={"User-Agent": "tensorfields-download"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        raise DownloadError(f"{url}: the server answered HTTP {err.code} {err.reason}") from err
    except urllib.error.URLError as err:
        raise UrlUnreachableError(url, err.reason) from err
    except ValueError as err:
        raise DownloadError(f"{url!r} is not a usable URL ({err})") from err
    except OSError as err:  # e.g. a timeout raised before urllib wraps it
        raise UrlUnreachableError(url, err) from err

    received = 0
    digest = hashlib.sha256()
    with response:
        if response.headers.get("Content-Type", "").startswith("text/html"):
            raise DownloadError(
                f"{url}: the server sent an HTML page instead of a file "
                "(a quota, login or confirmation page?)"
            )
        length = response.headers.get("Content-Length", "")
        total = int(length) if length.strip().isdigit() else None
        try:
            with open(part, "wb") as out, _progress_bar(progress) as bar:
                task = bar.add_task(dest.name, total=total)
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.advance(task, len(chunk))
        except BaseException as err:
            part.unlink(missing_ok=True)
            if isinstance(err, (OSError, http.client.HTTPException)):
                raise DownloadError(
                    f"{url}: the download broke off after {received} bytes ({err!r})"
                ) from err
            raise
    if total is not None and received != total:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: truncated or wrong-size download: received {received} bytes but the "
            f"server announced {total} (Content-Length)"
        )
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{url}: sha256 mismatch: got {digest.hexdigest()}, expected {sha256.lower()}"
        )
    os.replace(part, dest)
    return dest


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_archive(path: str | Path, sha256: str | None = None) -> None:
    """Raise ``DownloadError`` unless ``path`` is a readable zip whose members pass their CRCs."""
    path = Path(path)
    if sha256 is not None and _sha256_of(path) != sha256.lower():
        raise DownloadError(f"{path}: sha256 does not match the expected {sha256.lower()}")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise DownloadError(f"{path}: not a valid zip archive ({err})") from err
    if bad is not None:
        raise DownloadError(f"{path}: corrupt zip archive: member {bad!r} fails its CRC check")


def _member_parts(name: str) -> tuple[str, ...]:
    return tuple(part for part in name.replace("\\", "/").split("/") if part not in ("", "."))


def _is_unsafe(name: str) -> bool:
    """Absolute paths, drive letters and ``..`` components could escape the target folder."""
    posix = name.replace("\\", "/")
    return (
        posix.startswith("/")
        or PurePosixPath(posix).is_absolute()
        or (len(posix) >= 2 and posix[1] == ":")
        or ".." in posix.split("/")
    )


def _scene_prefix(names: list[tuple[str, ...]], scene: str, root: str) -> tuple[str, ...] | None:
    for prefix in ((root, scene), (scene,)):
        if any(len(parts) > len(prefix) and parts[: len(prefix)] == prefix for parts in names):
            return prefix
    return None


def _existing(scenes: Sequence[str], dest_root: Path) -> list[Path]:
    return [dest_root / s for s in scenes if (dest_root / s).exists()]


def _refuse_existing(scenes: Sequence[str], dest_root: Path) -> None:
    existing = _existing(scenes, dest_root)
    if existing:
        listed = ", ".join(str(p) for p in existing)
        raise SceneExistsError(
            f"{listed} already exist{'s' if len(existing) == 1 else ''}; "
            "refusing to overwrite (pass --overwrite to replace)"
        )


def extract_scenes(
    archive: str | Path,
    scenes: Sequence[str],
    dest_root: str | Path,
    *,
    overwrite: bool = False,
    root: str = "nerf_synthetic",
) -> list[Path]:
    """Unpack ``<root>/<scene>/...`` (or top-level ``<scene>/...``) into ``dest_root/<scene>``.

    The whole archive is checked for unsafe member paths (zip-slip) before anything is written.
    Each scene is unpacked into a temporary sibling folder and renamed into place, so an
    interrupted run never leaves a half-written scene. With ``overwrite`` an existing scene
    folder is replaced as a whole (not merged).
    """
    archive, dest_root = Path(archive), Path(dest_root)
    if not overwrite:
        _refuse_existing(scenes, dest_root)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise DownloadError(f"{archive}: not a valid zip archive ({err})") from err
    with zf:
        infos = zf.infolist()
        for info in infos:
            if _is_unsafe(info.filename):
                raise DownloadError(
                    f"{archive}: member {info.filename!r} would be written outside the target "
                    "folder (zip-slip); refusing to unpack this archive"
                )
        names = [_member_parts(info.filename) for info in infos]
        prefixes = {}
        for scene in scenes:
            prefix = _scene_prefix(names, scene, root)
            if prefix is None:
                raise DownloadError(
                    f"{archive}: no folder for scene {scene!r} (looked for {root}/{scene}/ "
                    f"and {scene}/)"
                )
            prefixes[scene] = prefix

        dest_root.mkdir(parents=True, exist_ok=True)
        out = []
        for scene, prefix in prefixes.items():
            tmp = Path(tempfile.mkdtemp(prefix=f".{scene}.", suffix=".part", dir=dest_root))
            try:
                tmp_resolved = tmp.resolve()
                for info, parts in zip(infos, names, strict=True):
                    if info.is_dir() or parts[: len(prefix)] != prefix:
                        continue
                    target = tmp.joinpath(*parts[len(prefix) :])
                    if not target.resolve().is_relative_to(tmp_resolved):
                        raise DownloadError(f"{archive}: member {info.filename!r} escapes {tmp}")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, _CHUNK)
                final = dest_root / scene
                if final.exists() or final.is_symlink():
                    old = dest_root / f".{scene}.old-{os.getpid()}"
                    os.replace(final, old)
                    os.replace(tmp, final)
                    if old.is_dir() and not old.is_symlink():
                        shutil.rmtree(old)
                    else:
                        old.unlink()
                else:
                    os.replace(tmp, final)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            out.append(final)
    return out


def resolve_scenes(scenes: str | Sequence[str]) -> list[str]:
    """``"all"`` → every NeRF-Synthetic scene; otherwise validate the names given."""
    names = [scenes] if isinstance(scenes, str) else list(scenes)
    if "all" in names:
        return list(NERF_SYNTHETIC_SCENES)
    unknown = [s for s in names if s not in NERF_SYNTHETIC_SCENES]
    if unknown:
        raise DownloadError(
            f"unknown scene(s) {', '.join(unknown)}; choose from "
            f"{', '.join(NERF_SYNTHETIC_SCENES)} or all"
        )
    return names


def download_nerf_synthetic(
    scenes: str | Sequence[str],
    data_dir: str | Path | None = None,
    *,
    url: str | None = None,
    archive: str | Path | None = None,
    overwrite: bool = False,
    keep_archive: bool = False,
    cache_dir: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> list[Path]:
    """Put NeRF-Synthetic scene folders at ``<data_dir>/nerf_synthetic/<scene>``; return them.

    Archive source, in order: ``archive`` (a local file, used as is and never deleted), a copy
    already in the cache dir, else a download from ``url`` (default: the table above) into the
    cache dir. A freshly downloaded archive is deleted after unpacking unless ``keep_archive``.
    Existing scene folders are checked *before* downloading so a refusal costs nothing.
    """
    names = resolve_scenes(scenes)
    data_root = Path(data_dir if data_dir is not None else default_data_dir()) / "nerf_synthetic"
    if not overwrite:
        _refuse_existing(names, data_root)
    source = ARCHIVES["nerf_synthetic"]
    # A table checksum describes the table's file; a user-chosen URL or file may be repackaged.
    expected_sha = source.sha256 if url is None else None

    downloaded = False
    if archive is not None:
        path = Path(archive)
        if not path.is_file():
            raise DownloadError(f"{path}: no such archive file")
        verify_archive(path)
    else:
        path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / source.filename
        if path.is_file():
            try:
                verify_archive(path, expected_sha)
                console.print(f"Using cached archive {path}")
            except DownloadError as err:
                console.print(f"Cached archive is unusable ({err}); downloading it again")
                path.unlink()
        if not path.is_file():
            try:
                fetch_url(
                    url or source.url, path, timeout=timeout, sha256=expected_sha, progress=progress
                )
            except DownloadError as err:
                raise DownloadError(
                    f"{err}. You can download {source.filename} by hand (e.g. from "
                    f"{source.page}) and pass --archive PATH."
                ) from err
            downloaded = True
            try:
                verify_archive(path)
            except DownloadError:
                path.unlink(missing_ok=True)
                raise

    out = extract_scenes(path, names, data_root, overwrite=overwrite, root=source.root)
    if downloaded and not keep_archive:
        path.unlink(missing_ok=True)
    return out
