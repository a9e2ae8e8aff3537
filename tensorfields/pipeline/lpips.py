"""LPIPS (v0.1, VGG) implemented here so evaluation never depends on the ``lpips`` package.

Why our own copy: the ``lpips``/``torchvision`` packages fetch weights at construction time and
raise when offline, which would kill an evaluation run after hours of training. Here the two
weight files are looked up in a cache (and torch hub's checkpoints dir), downloaded with a
timeout when missing, and when they cannot be had ``load_lpips`` returns ``None`` after one line
saying where to put them; callers then simply skip the metric.

The network is exactly LPIPS(net='vgg', version='0.1'): the scaling layer, torchvision's VGG16
``features`` up to relu5_3 tapped at relu1_2/2_2/3_3/4_3/5_3, channel-unit-normalised taps,
squared difference, 1x1 non-negative linear layers, spatial mean, sum over taps.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor, nn

from tensorfields.data.download import (
    DEFAULT_TIMEOUT,
    DownloadError,
    UrlUnreachableError,
    fetch_url,
)

VGG16_FILE = "vgg16-397923af.pth"
LIN_FILE = "vgg.pth"
LPIPS_URLS: dict[str, str] = {
    # torchvision's VGG16 ImageNet weights (VGG16_Weights.IMAGENET1K_V1).
    VGG16_FILE: "https://download.pytorch.org/models/vgg16-397923af.pth",
    # LPIPS v0.1 linear-layer weights from the authors' repository.
    LIN_FILE: (
        "https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/"
        "lpips/weights/v0.1/vgg.pth"
    ),
}

# VGG16 "features" up to relu5_3: (out channels) for convs, "M" for 2x2 max-pool.
_VGG16_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
)  # fmt: skip
_TAP_INDICES = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in `features`
TAP_CHANNELS = (64, 128, 256, 512, 512)


def default_cache_dir() -> Path:
    """``$TF_CACHE_DIR/lpips`` if set, else ``~/.cache/tensorfields/lpips``."""
    root = os.environ.get("TF_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "tensorfields") / "lpips"


def _normalize_channels(x: Tensor, eps: float = 1e-10) -> Tensor:
    return x / (torch.sqrt(torch.sum(x * x, dim=1, keepdim=True)) + eps)


class LPIPS(nn.Module):
    """LPIPS-VGG v0.1 distance between images in [-1, 1], NCHW (the official convention)."""

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for item in _VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                channels = int(item)
        # Indices match torchvision's vgg16().features, so its state-dict keys load as is.
        self.features = nn.Sequential(*layers)
        for i, c in enumerate(TAP_CHANNELS):
            self.add_module(f"lin{i}", nn.Conv2d(c, 1, 1, bias=False))
        shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
        scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
        self.register_buffer("shift", shift, persistent=False)
        self.register_buffer("scale", scale, persistent=False)
        self.requires_grad_(False)
        self.eval()

    def _taps(self, x: Tensor) -> list[Tensor]:
        taps = []
        h = (x - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in _TAP_INDICES:
                taps.append(h)
        return taps

    def forward(
        self, x: Float[Tensor, "n 3 h w"], y: Float[Tensor, "n 3 h w"]
    ) -> Float[Tensor, " n"]:
        """Per-image distance; inputs in [-1, 1]. Differentiable w.r.t. the inputs."""
        total = x.new_zeros(x.shape[0])
        for i, (a, b) in enumerate(zip(self._taps(x), self._taps(y), strict=True)):
            diff = (_normalize_channels(a) - _normalize_channels(b)) ** 2
            total = total + getattr(self, f"lin{i}")(diff).mean(dim=(1, 2, 3))
        return total

    def load_weights(
        self, vgg16_state: Mapping[str, Tensor], lin_state: Mapping[str, Tensor]
    ) -> None:
        """Map torchvision VGG16 keys (``features.N.*``) and LPIPS keys (``linK.model.J.weight``)
        onto this module. Raises ``ValueError`` naming what is missing or mis-shaped."""
        mapped: dict[str, Tensor] = {}
        for key, value in vgg16_state.items():
            if key.startswith("features."):
                mapped[key] = value
        for key, value in lin_state.items():
            match = re.fullmatch(r"lin(\d)\.model\.\d+\.weight", key)
            if match:
                # LPIPS trains these clamped to >= 0; clamping is a no-op on the official file.
                mapped[f"lin{match.group(1)}.weight"] = value.clamp(min=0)
        own = self.state_dict()
        missing = sorted(set(own) - set(mapped))
        if missing:
            raise ValueError(f"missing weights: {', '.join(missing)}")
        for key, value in own.items():
            if tuple(mapped[key].shape) != tuple(value.shape):
                raise ValueError(
                    f"{key} has shape {tuple(mapped[key].shape)}, expected {tuple(value.shape)}"
                )
        self.load_state_dict({k: mapped[k] for k in own}, strict=True)


def lpips_distance(model: LPIPS, pred: Float[Tensor, "h w 3"], gt: Float[Tensor, "h w 3"]) -> float:
    """LPIPS of two (h, w, 3) images in [0, 1] (mapped to [-1, 1], as ``normalize=True`` does)."""
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise ValueError(
            f"expected two (h, w, 3) images of the same shape, got {tuple(pred.shape)} "
            f"and {tuple(gt.shape)}"
        )
    param = next(model.parameters())

    def prep(img: Tensor) -> Tensor:
        img = img.to(device=param.device, dtype=param.dtype)
        return img.permute(2, 0, 1).unsqueeze(0) * 2.0 - 1.0

    with torch.no_grad():
        return model(prep(pred), prep(gt)).item()


def _find_or_fetch(
    name: str, url: str, cache_dir: Path, timeout: float, progress: bool
) -> Path | str:
    """A local path for weight file ``name``, or a one-line reason why there is none."""
    candidates = [cache_dir / name]
    if name == VGG16_FILE:
        candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / name)
    for path in candidates:
        if path.is_file():
            return path
    try:
        return fetch_url(url, cache_dir / name, timeout=timeout, progress=progress)
    except UrlUnreachableError as err:
        return str(err.reason)
    except DownloadError as err:
        return str(err)
    except OSError as err:  # e.g. the cache dir is not writable
        return str(err)


def load_lpips(
    device: torch.device | str,
    cache_dir: str | Path | None = None,
    urls: Mapping[str, str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
) -> LPIPS | None:
    """Build LPIPS-VGG on ``device`` with official weights, or return ``None`` with one notice.

    ``urls`` overrides entries of ``LPIPS_URLS`` (keys: ``"vgg16-397923af.pth"``, ``"vgg.pth"``).
    Files are looked for in ``cache_dir`` (default ``default_cache_dir()``) and, for VGG16, in
    ``torch.hub.get_dir()/checkpoints``; missing ones are downloaded into ``cache_dir``.
    """
    table = dict(LPIPS_URLS)
    if urls:
        unknown = set(urls) - set(table)
        if unknown:
            raise ValueError(f"unknown LPIPS weight file(s) {sorted(unknown)}; use {list(table)}")
        table.update(urls)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()

    paths: dict[str, Path] = {}
    for name, url in table.items():
        found = _find_or_fetch(name, url, cache, timeout, progress)
        if not isinstance(found, Path):
            _notice(f"could not download {name} ({found}); place it in {cache} to enable LPIPS")
            return None
        paths[name] = found

    states = {}
    for name, path in paths.items():
        try:
            states[name] = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a torn or foreign file: say which, keep the run going
            _notice(f"could not read {path} ({_one_line(err)}); delete it to download it again")
            return None
    model = LPIPS()
    try:
        model.load_weights(states[VGG16_FILE], states[LIN_FILE])
    except (ValueError, AttributeError, TypeError) as err:
        files = f"{paths[VGG16_FILE]} / {paths[LIN_FILE]}"
        _notice(f"weights in {files} do not fit LPIPS-VGG ({_one_line(err)})")
        return None
    return model.to(device)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def _notice(message: str) -> None:
    print(f"LPIPS skipped: {message}", file=sys.stderr, flush=True)


__all__ = [
    "LIN_FILE",
    "LPIPS",
    "LPIPS_URLS",
    "TAP_CHANNELS",
    "VGG16_FILE",
    "default_cache_dir",
    "load_lpips",
    "lpips_distance",
]
