"""Method registry: names -> model class and config presets (the paper recipe and a CPU one)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from tensorfields.models.base import Model
from tensorfields.models.migs import MIGSModel, MIGSModelConfig
from tensorfields.models.splat import SplatModel, SplatModelConfig
from tensorfields.models.strivec import StrivecModel, StrivecModelConfig
from tensorfields.models.tensorf import TensoRFModel, TensoRFModelConfig
from tensorfields.pipeline.config import ExperimentConfig, TrainerConfig


@dataclass(frozen=True)
class MethodSpec:
    description: str
    model_class: type[Model]
    presets: dict[str, Callable[[], ExperimentConfig]]


def _tensorf_paper(kind: str) -> ExperimentConfig:
    if kind == "vm":
        model = TensoRFModelConfig()
    else:  # official CP recipe: 96/288 components, 500^3 final grid, L1 1e-5, init 0.2
        model = TensoRFModelConfig(
            decomposition="cp",
            density_components=96,
            appearance_components=288,
            init_scale=0.2,
            voxels_final=500**3,
            l1_weight_initial=1e-5,
            l1_weight_rest=1e-5,
        )
    return ExperimentConfig(method=f"tensorf-{kind}", model=model, trainer=TrainerConfig())


# The schedule every 'cpu' preset shares: carving, upsampling at 500-1700, occupancy updates at
# 300 / 600 and every 300 after, bfloat16 shading; 5000 steps.
CPU_SCHEDULE = dict(
    upsample_steps=(500, 800, 1100, 1400, 1700),
    alpha_mask_steps=(300, 600),
    occupancy_update_every=300,
    occupancy_init="carve",
    shading_precision="bfloat16",
)


def _cpu_preset(
    config: ExperimentConfig, schedule: dict = CPU_SCHEDULE, **model
) -> ExperimentConfig:
    """``config`` with a cpu ``schedule`` (the marched-field one unless given) and the method's
    own ``model`` settings; 5000 steps, a validation view every 1000."""
    config.preset = "cpu"
    config.model = dataclasses.replace(config.model, **schedule, **model)
    config.trainer = dataclasses.replace(config.trainer, max_iterations=5000, eval_every=1000)
    return config


def _tensorf_cpu(kind: str) -> ExperimentConfig:
    """A compressed schedule for a 2-core CPU (5000 steps on lego 400x400: about 15 minutes
    with AVX-512 and bfloat16, about 25 on an AVX2-only CPU).

    Starts from the visual hull of the training masks (so empty space is skipped from the first
    step), at 64^3 voxels growing to 200^3 (VM) over steps 500-1700; the occupancy grid is
    recomputed from the density at step 300 (box shrink), 600 (ray filtering) and every 300
    steps after. Training rays outside the hull are dropped from the start. The shading MLP runs
    in bfloat16 where the CPU has it (half of a step's time is that MLP).
    """
    voxels_final = 200**3 if kind == "vm" else 300**3
    return _cpu_preset(_tensorf_paper(kind), voxels_init=64**3, voxels_final=voxels_final)


def _slimmerf(preset: str) -> ExperimentConfig:
    """TensoRF VM whose ranks grow with TRaIn (density 1 -> 16 by 1, appearance 3 -> 48 by 3).

    'paper' keeps the paper's υ = 0.4 and the official η = 0. 'cpu' uses υ = 0 and η = 10: a
    step every 11 iterations, full rank at step 165 (η = 20 ended 0.57 dB under tensorf-vm
    after 10 minutes on lego, η = 10 0.23 dB). Measured on lego with this preset: no two
    consecutive losses differ by 40% (at most 20%, while the loss first falls), so at υ = 0.4
    the ranks never leave 1/3; at υ = 0.05 they all grow within steps 55-73 of that fall and the
    run stalls near 13 dB for hundreds of steps; growing on a fixed pace trains like tensorf-vm.
    """
    config = _tensorf_paper("vm") if preset == "paper" else _tensorf_cpu("vm")
    config.method = "slimmerf"
    pace = (
        {"threshold": 0.4, "min_gap": 0} if preset == "paper" else {"threshold": 0.0, "min_gap": 10}
    )
    ranks = dataclasses.replace(config.model.ranks, enabled=True, **pace)
    config.model = dataclasses.replace(config.model, ranks=ranks)
    return config


def _strivec(preset: str) -> ExperimentConfig:
    """Strivec: local CP tri-vectors at 3 scales around points from a coarse TensoRF.

    'cpu' follows TensoRF's cpu preset (5000 steps, carving, bfloat16 shading, the same
    upsampling and occupancy schedule) with a 300-step coarse stage (64^3 voxels; its shading
    MLP is small in every preset, see ``coarse_mlp_width``).
    """
    config = ExperimentConfig(method="strivec", model=StrivecModelConfig(), trainer=TrainerConfig())
    if preset == "cpu":
        config = _cpu_preset(config, coarse_steps=300, coarse_voxels=64**3)
    return config


def _splat(preset: str) -> ExperimentConfig:
    """3D Gaussian splatting. 'paper': the 3DGS recipe (100k random Gaussians in the box for a
    Blender scene, 30k steps, densification from step 500 to 15k). 'cpu': 5000 steps starting
    from 20k Gaussians inside the visual hull of the training masks (a random start in the whole
    box overdraws every pixel hundreds of times: ~3.5x the time per step on lego at 400x400),
    densifying every 100 steps from step 300 up to 150k Gaussians, SH degree raised every 500.
    """
    model = SplatModelConfig()
    trainer = TrainerConfig(max_iterations=30000, eval_every=2000, checkpoint_every=1000)
    config = ExperimentConfig(method="splat", model=model, trainer=trainer)
    if preset == "cpu":
        densify = dataclasses.replace(model.densify, refine_start_iter=300, max_gaussians=150_000)
        splat_schedule = dict(init_region="hull", sh_degree_interval=500, densify=densify)
        config = _cpu_preset(config, splat_schedule, init_count=20_000)
    return config


def _migs(preset: str) -> ExperimentConfig:
    """MIGS. 'paper': the official sizes (50k Gaussians, R = 100, f of 32) and 100k steps, one
    frame of one identity a step. 'cpu': 8k Gaussians (the procedural humans cover ~2% of a
    128x128 frame) and 3000 steps, about 2.5 minutes on 2 cores; the paper's R = 100."""
    trainer = TrainerConfig(max_iterations=100_000, eval_every=5000, checkpoint_every=1000)
    config = ExperimentConfig(method="migs", model=MIGSModelConfig(), trainer=trainer)
    if preset == "cpu":
        config.preset = "cpu"
        config.model = dataclasses.replace(config.model, n_gaussians=8000)
        config.trainer = dataclasses.replace(trainer, max_iterations=3000, eval_every=1000)
    return config


METHODS: dict[str, MethodSpec] = {
    "tensorf-vm": MethodSpec(
        "TensoRF, vector-matrix factorization (ECCV 2022)",
        TensoRFModel,
        {"paper": lambda: _tensorf_paper("vm"), "cpu": lambda: _tensorf_cpu("vm")},
    ),
    "tensorf-cp": MethodSpec(
        "TensoRF, CP factorization (ECCV 2022)",
        TensoRFModel,
        {"paper": lambda: _tensorf_paper("cp"), "cpu": lambda: _tensorf_cpu("cp")},
    ),
    "slimmerf": MethodSpec(
        "SlimmeRF, TensoRF VM with ranks grown in training, slimmable (3DV 2024)",
        TensoRFModel,
        {"paper": lambda: _slimmerf("paper"), "cpu": lambda: _slimmerf("cpu")},
    ),
    "strivec": MethodSpec(
        "Strivec, sparse multi-scale local CP tri-vector tensors (ICCV 2023)",
        StrivecModel,
        {"paper": lambda: _strivec("paper"), "cpu": lambda: _strivec("cpu")},
    ),
    "splat": MethodSpec(
        "3D Gaussian splatting (SIGGRAPH 2023); gsplat on GPU, own tile rasterizer on CPU",
        SplatModel,
        {"paper": lambda: _splat("paper"), "cpu": lambda: _splat("cpu")},
    ),
    "migs": MethodSpec(
        "MIGS, many identities in one CP-factorized Gaussian tensor (ECCV 2024)",
        MIGSModel,
        {"paper": lambda: _migs("paper"), "cpu": lambda: _migs("cpu")},
    ),
}

DEFAULT_METHOD = "tensorf-vm"


def method_config(method: str, preset: str = "paper") -> ExperimentConfig:
    """A fresh config for ``method`` with ``preset`` applied; clear errors for unknown names."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
    presets = METHODS[method].presets
    if preset not in presets:
        raise ValueError(
            f"method {method!r} has no preset {preset!r}; available: {', '.join(presets)}"
        )
    return presets[preset]()


def model_config_class(method: str) -> type:
    """The model-config dataclass of ``method`` (for reading its saved config)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; available: {', '.join(METHODS)}")
    return type(METHODS[method].presets["paper"]().model)


def build_model(config: ExperimentConfig) -> Model:
    return METHODS[config.method].model_class(config.model)
