"""MIGS (Chatziagapi et al., ECCV 2024): many identities' Gaussians in one CP-factorized tensor.

Per step, one frame of one identity: that identity's canonical Gaussians are rebuilt from the
CP factors (``representations/gaussian_tensor.py``), moved by the shared pose-conditioned
deformation network, posed by linear blend skinning with weights from the shared skinning field,
coloured by the shared colour network (feature f + identity embedding) and rasterized.

Canonical space. All identities share one canonical skeleton (the mean of their rest joints).
A frame's bone transforms are re-based onto it by each bone's rest-joint offset, so a point
attached to joint j lands where identity i's own joint j carries it; the tensor learns the rest
(girths, clothes, limb shapes). Our body model is that skeleton alone (no SMPL mesh), so the
skinning prior is the distance to the bones and the template is flesh around them
(``representations/avatar_template.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from tensorfields.core.rasterize import rasterize_gaussians
from tensorfields.core.skinning import (
    axis_angle_to_matrix,
    forward_kinematics,
    linear_blend_skinning,
    quat_multiply,
    rotmat_to_quat,
)
from tensorfields.data.batches import FrameBatch
from tensorfields.data.cameras import Cameras
from tensorfields.data.frames import FrameSplit
from tensorfields.models.base import Model, ModelConfig, RenderControl, RenderOutput
from tensorfields.models.losses import ssim_loss
from tensorfields.representations.avatar_networks import (
    ColourNetwork,
    DeformationNetwork,
    SkinningField,
)
from tensorfields.representations.avatar_template import row_offset, spacing, template_rows
from tensorfields.representations.gaussian_tensor import (
    CPGaussianTensor,
    DenseGaussianTensor,
    split_attributes,
)


@dataclass
class MIGSModelConfig(ModelConfig):
    """MIGS with the official design; sizes default to the paper's (R = 100, 50k Gaussians)."""

    factorization: Literal["cp", "dense"] = "cp"
    """'cp': the tensor as CP factors (MIGS); 'dense': every identity's Gaussians stored in full
    (the per-identity baseline)."""
    n_gaussians: int = 50_000
    """Gaussians per identity (fixed: the tensor's second dimension)."""
    rank: int = 100
    """CP rank R."""
    feature_dim: int = 32
    """Length of the per-Gaussian feature f the colour network reads."""
    embedding_dim: int = 16
    """Length of each identity's embedding (colour network input)."""
    network_width: int = 64
    """Hidden width of the skinning, deformation and colour networks."""
    template_radius: float = 0.1
    """Template Gaussians fill this radius (world units) around the bones."""
    init_opacity: float = 0.1
    """Opacity of the template Gaussians."""
    skinning_falloff: float = 0.05
    """Length scale of the nearest-bone skinning prior."""
    lr_factors: float = 3e-3
    """Learning rate of the CP factors (or of the dense rows)."""
    lr_networks: float = 5e-3
    """Learning rate of the shared networks and identity embeddings."""
    ssim_lambda: float = 0.2
    """Loss = (1 - λ) L1 + λ (1 - SSIM) + mask and regularizer terms."""
    mask_weight: float = 0.1
    """Weight of the L1 loss between rendered alpha and the foreground mask."""
    skinning_weight: float = 0.01
    """Weight of the squared skinning correction (keeps weights near the bone prior)."""
    deformation_weight: float = 10.0
    """Weight of the squared non-rigid offsets (keeps LBS doing the large motion)."""
    pose_noise: float = 0.0
    """Std (radians) of noise added to the pose the deformation network sees in training."""
    finetune_from: Path | None = None
    """A trained migs run: add the training data's identities to it and fit only their tensor
    rows, embeddings and the colour network (other factors and networks frozen)."""
    n_identities: int = 1
    """Identities in the tensor (set from the training data)."""
    n_joints: int = 15
    """Joints of the skeleton (set from the training data)."""
    near_plane: float = 0.01
    """Gaussians nearer to the camera than this are culled."""


# What a fine-tuning run takes over from the trained run's config.
SIZE_FIELDS = ("factorization", "n_gaussians", "rank", "feature_dim", "embedding_dim",
               "network_width", "template_radius", "init_opacity", "skinning_falloff")  # fmt: skip


class MIGSModel(Model):
    data_kind = "images"
    depth_kind = "z"  # the rasterizer renders expected camera z

    def __init__(self, config: MIGSModelConfig):
        super().__init__()
        self.config = config
        self.register_buffer("background", torch.tensor(config.background, dtype=torch.float32))
        self.register_buffer("identity_offset", torch.zeros((), dtype=torch.long))
        self._build(
            torch.zeros(config.n_joints, 3),
            tuple([-1] + [0] * (config.n_joints - 1)),
            torch.zeros(config.n_identities, config.n_joints, 3),
        )
        self._render_inputs: dict | None = None

    def _build(self, rest_joints_mean: Tensor, parents: tuple[int, ...], rest_joints: Tensor):
        cfg = self.config
        J = len(parents)
        self.parents = parents
        self.register_buffer("parent_index", torch.tensor(parents))
        self.register_buffer("template_joints", rest_joints_mean.float())
        self.register_buffer("rest_joints", rest_joints.float())
        length = float(
            (rest_joints_mean[1:] - rest_joints_mean[list(parents[1:])]).norm(dim=-1).sum()
        )
        scale = spacing(cfg.n_gaussians, length, cfg.template_radius)
        self.register_buffer("row_offset", row_offset(cfg.feature_dim, scale, cfg.init_opacity))
        rows = template_rows(
            rest_joints_mean, parents, cfg.n_gaussians, cfg.template_radius, cfg.feature_dim
        )
        n_ids = rest_joints.shape[0]
        if cfg.factorization == "cp":
            self.tensor = CPGaussianTensor(rows, n_ids, cfg.rank)
        else:
            self.tensor = DenseGaussianTensor(rows, n_ids)
        width = cfg.network_width
        self.skinning = SkinningField(J, width, falloff=cfg.skinning_falloff)
        self.deformation = DeformationNetwork(J, width)
        self.colour = ColourNetwork(cfg.feature_dim, cfg.embedding_dim, width)
        self.embeddings = nn.Parameter(torch.zeros(n_ids, cfg.embedding_dim))
        # Poses viewers can pick (the training frames'): local rotations and root positions.
        self.register_buffer("pose_library", torch.zeros(0, J, 3))
        self.register_buffer("root_library", torch.zeros(0, 3))

    # -- data -----------------------------------------------------------------------------------
    def prepare(self, split) -> None:
        if not isinstance(split, FrameSplit):
            raise ValueError(
                "migs trains on videos of articulated bodies (a FrameSplit): use --scene humans "
                "or a ZJU-MoCap subject folder"
            )
        cfg = self.config
        cfg.n_joints = len(split.skeleton)
        if cfg.finetune_from is not None:
            self._add_identities_to_trained(split)
            return
        cfg.n_identities = split.n_identities
        self._build(split.rest_joints.mean(0), split.skeleton.parents, split.rest_joints)
        self._keep_poses(split)
        print(self.describe())

    def _keep_poses(self, split: FrameSplit) -> None:
        rest_roots = split.rest_joints[split.identity, 0]
        root_bones = split.bone_transforms[:, 0]
        self.pose_library = split.pose.float().clone()
        self.root_library = (root_bones[:, :3, :3] @ rest_roots[..., None])[..., 0] + root_bones[
            :, :3, 3
        ]

    def describe(self) -> str:
        """The tensor's shape and what it costs, stored as factors and in full."""
        tensor, cfg = self.tensor, self.config
        shape = f"{tensor.n_identities} x {tensor.n_gaussians} x {self.row_offset.numel()}"
        stored = sum(p.numel() for p in tensor.parameters())
        full = tensor.n_identities * tensor.n_gaussians * self.row_offset.numel()
        kind = f"CP rank {cfg.rank}" if cfg.factorization == "cp" else "dense"
        return (
            f"MIGS tensor {shape} (identities x Gaussians x attributes), {kind}: "
            f"{stored / 1e6:.3f}M parameters (in full {full / 1e6:.3f}M); "
            f"{self.parameter_count() / 1e6:.3f}M with the shared networks and embeddings"
        )

    def _add_identities_to_trained(self, split: FrameSplit) -> None:
        from tensorfields.pipeline.checkpoint import latest_checkpoint, load_checkpoint
        from tensorfields.pipeline.config import load_config

        run = Path(self.config.finetune_from)
        trained_config = load_config(run / "config.yaml").model
        if not isinstance(trained_config, MIGSModelConfig):
            raise ValueError(f"{run} is not a migs run")
        for name in SIZE_FIELDS:  # the tensor and networks are the trained run's
            setattr(self.config, name, getattr(trained_config, name))
        state = load_checkpoint(latest_checkpoint(run))["model"]
        self.load_checkpoint_state(state)
        if tuple(self.parents) != split.skeleton.parents:
            raise ValueError(f"{run} was trained on another skeleton than this data's")
        trained = self.tensor.n_identities
        self.tensor.add_identities(split.n_identities)
        fresh = self.embeddings.detach().mean(0, keepdim=True).expand(split.n_identities, -1)
        self.embeddings = nn.Parameter(torch.cat([self.embeddings.detach(), fresh]))
        self.rest_joints = torch.cat([self.rest_joints, split.rest_joints.float()])
        self.identity_offset.fill_(trained)
        self.config.n_identities = trained + split.n_identities
        for frozen in (*self.tensor.shared_parameters(), *self.skinning.parameters(),
                       *self.deformation.parameters()):  # fmt: skip
            frozen.requires_grad_(False)
        print(f"Fine-tuning {split.n_identities} new identities on a tensor of {trained}")
        print(self.describe())

    # -- optimisation ---------------------------------------------------------------------------
    def param_groups(self, lr_scale: float = 1.0) -> list[dict]:
        cfg = self.config
        factors = list(self.tensor.identity_parameters())
        networks = [self.embeddings, *self.colour.parameters()]
        if cfg.finetune_from is None:
            factors += self.tensor.shared_parameters()
            networks += [*self.skinning.parameters(), *self.deformation.parameters()]
        return [
            {"name": "factors", "params": factors, "lr": cfg.lr_factors * lr_scale},
            {"name": "networks", "params": networks, "lr": cfg.lr_networks * lr_scale},
        ]

    def parameter_count(self) -> int:
        """Parameters of the tensor, networks and embeddings (what is stored)."""
        return sum(p.numel() for p in self.parameters())

    def progress_info(self) -> str:
        n = self.tensor.n_gaussians
        return f"{self.tensor.n_identities} ids  {n / 1000:.0f}K gaussians"

    # -- posing and rendering -------------------------------------------------------------------
    def posed_gaussians(
        self,
        identity: int,
        pose: Float[Tensor, "J 3"],
        bone_transforms: Float[Tensor, "J 4 4"],
        rest_joints: Float[Tensor, "J 3"],
    ) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
        """``(means, quats, scales, opacities, colours)`` of ``identity`` in world space, and
        the regularizers' inputs (skinning correction, non-rigid offsets)."""
        g = split_attributes(self.tensor.identity(identity) + self.row_offset)
        offsets = self.deformation(g.means, pose)
        canonical = g.means + offsets
        weights, correction = self.skinning(canonical, self.template_joints, self.parents)
        # Re-base each bone from the shared skeleton onto this identity's: G_j @ T(δ_j).
        delta = rest_joints - self.template_joints
        transforms = bone_transforms.clone()
        transforms[:, :3, 3] = (
            transforms[:, :3, 3] + (bone_transforms[:, :3, :3] @ delta[..., None])[..., 0]
        )
        means, linear = linear_blend_skinning(canonical, weights, transforms)
        quats = quat_multiply(rotmat_to_quat(linear), F.normalize(g.quats, dim=-1))
        colours = self.colour(g.features, self.embeddings[identity])
        gaussians = (means, quats, g.log_scales.exp(), torch.sigmoid(g.opacity_logits), colours)
        return gaussians, {"correction": correction, "offsets": offsets}

    def _render(self, cameras: Cameras, identity: int, pose, bone_transforms, rest_joints):
        gaussians, extras = self.posed_gaussians(identity, pose, bone_transforms, rest_joints)
        out = rasterize_gaussians(
            *gaussians,
            cameras.viewmats(),
            cameras.intrinsics(),
            cameras.width,
            cameras.height,
            background=self.background,
            near_plane=self.config.near_plane,
        )
        return RenderOutput(out.rgb, out.depth, out.alpha), extras

    def render_batch(self, batch: FrameBatch, training: bool) -> RenderOutput:
        if not isinstance(batch, FrameBatch):
            raise ValueError("migs renders frames of articulated bodies (FrameBatch)")
        pose = batch.pose
        if training and self.config.pose_noise > 0:
            pose = pose + self.config.pose_noise * torch.randn_like(pose)
        identity = int(self.identity_offset) + batch.identity
        output, extras = self._render(
            batch.cameras, identity, pose, batch.bone_transforms, batch.rest_joints
        )
        self._targets = {"alpha": batch.alpha, **extras}
        return output

    def loss(
        self, output: RenderOutput, target: Float[Tensor, "cams h w 3"], step: int
    ) -> dict[str, Tensor]:
        cfg, extras = self.config, self._targets
        l1 = (output.rgb - target).abs().mean()
        photometric = (1 - cfg.ssim_lambda) * l1 + cfg.ssim_lambda * ssim_loss(output.rgb, target)
        mask = (output.accumulation - extras["alpha"]).abs().mean()
        skinning = extras["correction"].pow(2).mean()
        deformation = extras["offsets"].pow(2).sum(-1).mean()
        total = (
            photometric
            + cfg.mask_weight * mask
            + cfg.skinning_weight * skinning
            + cfg.deformation_weight * deformation
        )
        mse = torch.mean((output.rgb.detach() - target) ** 2)
        return {"loss": total, "mse": mse, "l1": l1.detach(), "mask": mask.detach()}

    def render_view(self, split, index: int) -> RenderOutput:
        """Frame ``index`` of a FrameSplit, with its identity and pose."""
        device = self.background.device
        identity = int(split.identity[index])
        output, _ = self._render(
            split.cameras[index].to(device),
            int(self.identity_offset) + identity,
            split.pose[index].to(device),
            split.bone_transforms[index].to(device),
            split.rest_joints[identity].to(device),
        )
        return RenderOutput(output.rgb[0], output.depth[0], output.accumulation[0])

    def render_controls(self) -> list[RenderControl]:
        """Identity, and pose: 0 is the rest pose, k the pose of training frame k - 1."""
        inputs = self._render_inputs or {}
        return [
            RenderControl("identity", "identity", 0, self.tensor.n_identities - 1,
                          inputs.get("identity", 0)),
            RenderControl("pose", "pose (0: rest, k: training frame k)", 0,
                          self.pose_library.shape[0], 0),
        ]  # fmt: skip

    @contextmanager
    def render_with(self, values: dict[str, int]) -> Iterator[None]:
        with super().render_with(values):
            saved = self._render_inputs
            identity = int(values.get("identity", (saved or {}).get("identity", 0)))
            k = int(values.get("pose", 0))
            if not 0 <= k <= self.pose_library.shape[0]:
                raise ValueError(f"pose {k} out of range 0..{self.pose_library.shape[0]}")
            pose, root = (
                (None, None) if k == 0 else (self.pose_library[k - 1], self.root_library[k - 1])
            )
            self.set_render_inputs(identity, pose, root)
            try:
                yield
            finally:
                self._render_inputs = saved

    def set_render_inputs(
        self,
        identity: int,
        pose: Float[Tensor, "J 3"] | None = None,
        root: Float[Tensor, " 3"] | None = None,
    ) -> None:
        """Who :meth:`render_camera` shows, in which pose (local joint rotations, axis-angle;
        default: the rest pose) with the root joint at ``root`` (default: where it rests). Any
        identity takes any pose: the bones come from forward kinematics of its own skeleton."""
        if not 0 <= identity < self.tensor.n_identities:
            raise ValueError(f"identity {identity} out of range 0..{self.tensor.n_identities - 1}")
        J = len(self.parents)
        if pose is not None and tuple(pose.shape) != (J, 3):
            raise ValueError(f"pose must have shape ({J}, 3), got {tuple(pose.shape)}")
        self._render_inputs = {"identity": identity, "pose": pose, "root": root}

    def _posed_bones(self, identity: int, pose: Tensor, root: Tensor | None) -> Tensor:
        rest = self.rest_joints[identity]
        shift = None if root is None else root.to(rest) - rest[0]
        transforms, _ = forward_kinematics(self.parents, rest, axis_angle_to_matrix(pose), shift)
        return transforms

    @torch.no_grad()
    def render_camera(self, cameras: Cameras, index: int, chunk: int = 8192) -> RenderOutput:
        inputs = self._render_inputs or {"identity": 0, "pose": None, "root": None}
        identity, device = inputs["identity"], self.background.device
        pose = inputs["pose"]
        pose = torch.zeros(len(self.parents), 3, device=device) if pose is None else pose.to(device)
        transforms = self._posed_bones(identity, pose, inputs["root"])
        rest = self.rest_joints[identity]
        output, _ = self._render(cameras[index], identity, pose, transforms, rest)
        return RenderOutput(output.rgb[0], output.depth[0], output.accumulation[0])

    # -- checkpoints ----------------------------------------------------------------------------
    def load_checkpoint_state(self, state: dict) -> None:
        parents = tuple(int(p) for p in state["parent_index"].tolist())
        self.config.n_identities = state["rest_joints"].shape[0]
        self._build(state["template_joints"], parents, state["rest_joints"])
        super().load_checkpoint_state(state)
