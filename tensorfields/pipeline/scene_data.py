"""Turns a config's scene name and data path into loaded splits and scene bounds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from tensorfields.data.dataset import SceneSplit
from tensorfields.data.frames import FrameSplit
from tensorfields.data.loader import load_split
from tensorfields.data.locate import find_scene_data
from tensorfields.data.scenes import ScenePreset, load_preset
from tensorfields.pipeline.config import ExperimentConfig


def apply_scene_preset(config: ExperimentConfig, preset: ScenePreset) -> ExperimentConfig:
    """Copy the scene's box, near/far and background into the model config."""
    model = dataclasses.replace(
        config.model,
        aabb=tuple(preset.aabb),
        near=preset.near,
        far=preset.far,
        background=tuple(preset.background),
    )
    return dataclasses.replace(config, model=model)


def evenly_spaced(n_total: int, n: int) -> list[int]:
    """``n`` indices spread evenly over ``range(n_total)`` (first and last included)."""
    if n <= 0 or n > n_total:
        raise ValueError(f"cannot pick {n} of {n_total} views")
    if n == 1:
        return [0]
    return sorted({round(i * (n_total - 1) / (n - 1)) for i in range(n)})


@dataclass
class SceneData:
    """The splits of one scene, loaded on first use."""

    root: Path
    downscale: float
    background: tuple[float, float, float]
    depth_range: tuple[float, float]
    train_views: int | None = None
    identity: int | None = None

    def _load(self, split: str) -> SceneSplit:
        loaded = load_split(self.root, split, self.downscale, self.background)
        if self.identity is None:
            return loaded
        if not isinstance(loaded, FrameSplit):
            raise ValueError(f"{self.root} holds one scene, not identities: drop --identity")
        return loaded.of_identity(self.identity)

    def split(self, name: str) -> SceneSplit:
        """Any split by name (e.g. 'test_ood' of the humans dataset)."""
        return {
            "train": lambda: self.train,
            "val": lambda: self.val,
            "test": lambda: self.test,
        }.get(name, lambda: self._load(name))()

    @cached_property
    def train(self) -> SceneSplit:
        split = self._load("train")
        if self.train_views is not None:
            split = split.subset(evenly_spaced(len(split), self.train_views))
        return split

    @cached_property
    def val(self) -> SceneSplit:
        return self._load("val")

    @cached_property
    def test(self) -> SceneSplit:
        return self._load("test")


def scene_data_for(config: ExperimentConfig) -> SceneData:
    """Locate the scene's data (``--data``, ``$TF_DATA_DIR``, ``./data``; procedural on demand)."""
    preset = load_preset(config.scene)
    root = find_scene_data(preset, config.data)
    return SceneData(
        root=root,
        downscale=config.downscale,
        background=tuple(config.model.background),
        depth_range=(config.model.near, config.model.far),
        train_views=config.train_views,
        identity=config.identity,
    )
