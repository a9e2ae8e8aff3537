"""Lazy loader of the native core (``cuda/``): compiled on first use, never at import.

The extension is built with ``torch.utils.cpp_extension.load`` into a cache folder
(``$TF_CACHE_DIR/native/<torch version>/<cpu|cuda>-<host CPU>``, else under
``~/.cache/tensorfields``); later processes reuse it. The C++ is compiled for the host's own
instruction set (``-march=native``: AVX-512 where the CPU has it), so the folder is keyed by
the host CPU and a cache shared between different machines never runs foreign instructions. A build
that fails is remembered for the life of the process and reported once on stderr, after which
callers run the PyTorch reference. ``TF_BACKEND=torch`` never builds; ``TF_BACKEND=native``
turns an unbuildable extension into an error instead of a fallback.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

SOURCE_DIR = Path(__file__).resolve().parents[2] / "cuda"
CPU_SOURCES = (
    "bindings.cpp",
    "vm_interp.cpp",
    "vm_project.cpp",
    "vm_transmittance.cpp",
    "march.cpp",
    "composite.cpp",
    "occupancy.cpp",
    "local_cp.cpp",
    "local_cp_transmittance.cpp",
    "covering.cpp",
    "encoding.cpp",
    "raster.cpp",
)
CUDA_SOURCES = (
    "vm_interp.cu",
    "march.cu",
    "composite.cu",
    "occupancy.cu",
    "local_cp.cu",
    "covering.cu",
    "encoding.cu",
)
BACKENDS = ("torch", "native")


def host_cpu_tag() -> str:
    """A short key for the host CPU's model and instruction-set flags (what ``-march=native``
    compiles for)."""
    description = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            wanted = ("model name", "flags", "Features", "CPU part")
            lines = {line.split(":")[0].strip(): line for line in cpuinfo if ":" in line}
        description += "".join(lines.get(key, "") for key in wanted)
    except OSError:  # not Linux: the machine name is what there is
        pass
    return hashlib.sha1(description.encode()).hexdigest()[:10]


def _default_build_dir(flavour: str) -> Path:
    base = os.environ.get("TF_CACHE_DIR")
    root = Path(base) if base else Path.home() / ".cache" / "tensorfields"
    return root / "native" / torch.__version__ / f"{flavour}-{host_cpu_tag()}"


def _host_arch_flags() -> list[str]:
    """``-march=native`` where the compiler is GCC or Clang on x86-64 or ARM64 (the wider
    vectors of the host speed up the lookups' loops over channels)."""
    if platform.machine().lower() in ("x86_64", "aarch64", "arm64"):
        return ["-march=native"]
    return []


def _with_cuda() -> bool:
    if not torch.cuda.is_available():
        return False
    from torch.utils.cpp_extension import CUDA_HOME

    return CUDA_HOME is not None


def _one_line(error: BaseException) -> str:
    """Compiler output is long: keep its first ``error:`` line, else the message's first line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    compiler = [line for line in lines if "error:" in line.lower()]
    first = compiler[0] if compiler else (lines[0] if lines else "no message")
    reason = f"{type(error).__name__}: {first}"
    return reason if len(reason) <= 300 else reason[:297] + "..."


class NativeLoader:
    """Builds and imports the extension once; remembers the module or why it failed.

    ``sources``/``build_dir``/``with_cuda`` default to the project's; tests pass their own to
    simulate a broken build without touching the shared cache.
    """

    def __init__(
        self,
        name: str = "tensorfields_native",
        sources: list[Path] | None = None,
        build_dir: Path | None = None,
        with_cuda: bool | None = None,
    ) -> None:
        self.name = name
        self._sources = sources
        self._build_dir = build_dir
        self._with_cuda = with_cuda
        self._module: ModuleType | None = None
        self._error: str | None = None
        self._lock = threading.Lock()

    @property
    def error(self) -> str | None:
        """Why the build failed (None when it has not failed, or not been tried)."""
        return self._error

    def get(self) -> ModuleType | None:
        """The extension module, building it on the first call; None once a build has failed."""
        if self._module is not None or self._error is not None:
            return self._module
        with self._lock:
            if self._module is None and self._error is None:
                try:
                    self._module = self._build_with_cpu_fallback()
                except Exception as error:  # a compiler error, no compiler, no ninja, ...
                    self._error = _one_line(error)
                    print(
                        f"tensorfields: native ops unavailable ({self._error}); "
                        "using the PyTorch reference",
                        file=sys.stderr,
                        flush=True,
                    )
        return self._module

    def _build_with_cpu_fallback(self) -> ModuleType:
        """A CUDA build that fails (toolkit and driver mismatch, ...) still leaves the CPU ops:
        say why in one line and build those (unless CUDA was asked for explicitly)."""
        with_cuda = _with_cuda() if self._with_cuda is None else self._with_cuda
        try:
            return self._build(with_cuda)
        except Exception as error:
            if not with_cuda or self._with_cuda:
                raise
            print(
                f"tensorfields: CUDA native ops unavailable ({_one_line(error)}); "
                "building the CPU ones",
                file=sys.stderr,
                flush=True,
            )
            return self._build(False)

    def _build(self, with_cuda: bool) -> ModuleType:
        from torch.utils.cpp_extension import load

        sources = self._sources
        if sources is None:
            names = CPU_SOURCES + (CUDA_SOURCES if with_cuda else ())
            sources = [SOURCE_DIR / name for name in names]
        missing = [str(s) for s in sources if not Path(s).is_file()]
        if missing:  # e.g. a non-editable install, which does not ship cuda/
            raise FileNotFoundError(f"native sources not found: {', '.join(missing)}")
        build_dir = self._build_dir or _default_build_dir("cuda" if with_cuda else "cpu")
        build_dir.mkdir(parents=True, exist_ok=True)
        _clear_stale_lock(build_dir)
        defines = ["-DTF_WITH_CUDA"] if with_cuda else []
        return load(
            name=self.name,
            sources=[str(s) for s in sources],
            # No FMA contraction: the native ops must round like their PyTorch twins (marching
            # decides cell membership from the same float arithmetic).
            extra_cflags=["-O3", "-fopenmp", "-ffp-contract=off", *_host_arch_flags(), *defines],
            extra_cuda_cflags=["-O3", *defines],
            extra_ldflags=["-fopenmp"],
            build_directory=str(build_dir),
            verbose=False,
        )


# A build takes a few minutes; a lock older than this was left by a killed build.
STALE_LOCK_SECONDS = 30 * 60


def _clear_stale_lock(build_dir: Path) -> None:
    """torch's builder waits for as long as ``<build_dir>/lock`` exists, and a killed build
    leaves it behind: remove one that no build can still be holding."""
    lock = build_dir / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return
    if age > STALE_LOCK_SECONDS:
        print(f"tensorfields: removing a stale build lock ({lock})", file=sys.stderr)
        lock.unlink(missing_ok=True)


_LOADER = NativeLoader()


def backend() -> str | None:
    """``TF_BACKEND`` (``torch`` or ``native``), or None when unset (native where it builds)."""
    value = os.environ.get("TF_BACKEND", "").strip().lower()
    if value in ("", "auto"):
        return None
    if value not in BACKENDS:
        raise ValueError(
            f"TF_BACKEND must be one of {', '.join(BACKENDS)} (or unset), got {value!r}"
        )
    return value


def load_native() -> ModuleType | None:
    """The native extension (built on first call), or None when it cannot be built."""
    return _LOADER.get()


def native_available() -> bool:
    """Whether native ops will run: built (or buildable now) and not disabled by TF_BACKEND."""
    return backend() != "torch" and load_native() is not None


def native_ops(device: torch.device, loader: NativeLoader | None = None) -> ModuleType | None:
    """The module to run ops on ``device`` with, or None for the reference.

    Honours ``TF_BACKEND``: ``torch`` -> None without building; ``native`` -> the module, or a
    RuntimeError naming why it cannot serve ``device``.
    """
    forced = backend()
    if forced == "torch":
        return None
    module = (loader or _LOADER).get()
    reason = None
    if module is None:
        reason = (loader or _LOADER).error
    elif device.type == "cuda" and not module.with_cuda:
        reason = "the extension was built without CUDA (no GPU or CUDA_HOME at build time)"
    elif device.type not in ("cpu", "cuda"):
        reason = f"no native ops for device {device.type!r}"
    if reason is None:
        return module
    if forced == "native":
        raise RuntimeError(f"TF_BACKEND=native but native ops are unavailable: {reason}")
    return None


def ops_for(floats: Sequence[Tensor], no_grad: Sequence[Tensor] = ()) -> ModuleType | None:
    """The native module for an op's inputs, or None when the reference must run.

    ``floats`` must share one device and a float32/float64 dtype (else the reference promotes
    or raises as PyTorch does); ``no_grad`` are inputs the native backward gives no gradient
    to, so the reference runs when one of them requires grad.
    """
    if torch.is_grad_enabled() and any(t.requires_grad for t in no_grad):
        return None
    first = floats[0]
    if first.dtype not in (torch.float32, torch.float64) or any(
        t.dtype != first.dtype or t.device != first.device for t in floats
    ):
        return None
    return native_ops(first.device)
