"""Core-op fixtures: run a module's tests once on the PyTorch reference and once natively."""

from __future__ import annotations

import shutil

import pytest
import torch

from tensorfields.core import native


@pytest.fixture(scope="session")
def native_module():
    """The built extension. A failed build fails the tests unless no toolchain is installed."""
    module = native.load_native()
    if module is None:
        if shutil.which("c++") is None or shutil.which("ninja") is None:
            pytest.skip(f"no C++ compiler or ninja to build the native ops: {native._LOADER.error}")
        pytest.fail(f"native ops failed to build: {native._LOADER.error}")
    return module


@pytest.fixture(params=["torch", "native"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``TF_BACKEND`` for one test; mark a module with ``usefixtures("backend")`` to run each of
    its tests on both."""
    if request.param == "native":
        request.getfixturevalue("native_module")
    monkeypatch.setenv("TF_BACKEND", request.param)
    return request.param


@pytest.fixture(params=["cpu", "cuda"])
def device(request: pytest.FixtureRequest, native_module) -> torch.device:
    """Each native-vs-reference test runs on CPU tensors, and on CUDA tensors when a GPU is
    present (skipped with the reason otherwise)."""
    if request.param == "cuda":
        if not torch.cuda.is_available():
            pytest.skip("no CUDA device here: the GPU equivalence tests need a GPU machine")
        if not native_module.with_cuda:
            pytest.fail("a GPU is present but the native ops were built without CUDA")
    return torch.device(request.param)
