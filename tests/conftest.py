"""Fixtures shared by every test folder: an isolated cache, one CPU thread, tiny configs.

Test modules get helpers through fixtures (``tiny_config``, ``blocks_scene``, ``lego_root``),
never through ``import conftest``, which is ambiguous once several folders have a conftest.py.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tensorfields.core import native
from tensorfields.pipeline.config import ExperimentConfig
from tensorfields.pipeline.scene_data import SceneData, scene_data_for
from tensorfields.pipeline.setup import default_config


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache_and_one_thread(tmp_path_factory: pytest.TempPathFactory):
    """``$TF_CACHE_DIR`` in a temp folder (the ``blocks`` scene renders there, not into ~), and
    one torch thread: the tensors here are tiny, and the machine is shared (several threads
    spin against each other and against other jobs)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TF_CACHE_DIR", str(tmp_path_factory.mktemp("tf_cache")))
        yield
    torch.set_num_threads(threads)


def make_tiny_config(method: str = "tensorf-vm", **trainer: object) -> ExperimentConfig:
    """The cpu preset for the ``blocks`` scene, shrunk so a step takes milliseconds.

    Every schedule event of a real run happens within the 4 steps: carving (step 0), the first
    occupancy update that crops the box (1), an upsampling (2) and the ray filtering (3).
    ``alpha_threshold`` is 0 so the occupancy grid of the barely trained field is not empty (with
    the official 1e-4 every cell is empty after one step and no training ray survives filtering).
    """
    config = default_config(method, "cpu", "blocks")
    config.downscale = 4  # blocks is 100x100 -> 25x25
    config.model = dataclasses.replace(
        config.model,
        voxels_init=16**3,
        voxels_final=24**3,
        upsample_steps=(2,),
        alpha_mask_steps=(1, 3),
        density_components=4,
        appearance_components=6,
        appearance_dim=8,
        mlp_width=16,
        carve_resolution=32,
        alpha_threshold=0.0,
    )
    options = dict(
        batch_size=256,
        max_iterations=4,
        eval_every=0,
        checkpoint_every=2,
        final_eval_every=0,
        device="cpu",
    )
    options.update(trainer)
    config.trainer = dataclasses.replace(config.trainer, **options)
    return config


@pytest.fixture
def tiny_config() -> Callable[..., ExperimentConfig]:
    """Factory: ``tiny_config(method="tensorf-vm", **trainer_overrides)`` -> ExperimentConfig."""
    return make_tiny_config


@pytest.fixture(scope="session")
def blocks_scene(_isolated_cache_and_one_thread) -> SceneData:
    """The ``blocks`` scene at the tiny config's size, loaded once per session (read-only)."""
    return scene_data_for(make_tiny_config())


def find_lego() -> Path | None:
    """``$TF_DATA_DIR/nerf_synthetic/lego`` when it holds the Blender layout, else None."""
    base = os.environ.get("TF_DATA_DIR")
    if not base:
        return None
    root = Path(base) / "nerf_synthetic" / "lego"
    return root if (root / "transforms_train.json").is_file() else None


@pytest.fixture
def lego_root() -> Path:
    root = find_lego()
    if root is None:
        pytest.skip(
            "lego data not found: set TF_DATA_DIR to a folder holding "
            "nerf_synthetic/lego/transforms_train.json (e.g. tf-download lego)"
        )
    return root


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
