"""Kinematic skeletons and linear blend skinning (LBS), as plain differentiable PyTorch.

Conventions: a skeleton is a tuple of parent indices (-1 for the root; parents come before their
children). A pose is one local rotation per joint (axis-angle, radians, about the joint) plus a
root translation. ``bone_transforms[j]`` maps a point of the canonical (rest) body, attached to
joint ``j``, to where it is in the posed body: ``G_j = W_j @ inverse(R_j)``, with ``W_j`` the
joint's posed world frame and ``R_j`` its rest frame (a translation to the rest joint), as SMPL's
``A`` matrices. LBS blends these 4x4 transforms with per-point weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor


def axis_angle_to_matrix(axis_angle: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch 3 3"]:
    """Rodrigues' formula; exact and differentiable at zero (series for small angles)."""
    theta2 = (axis_angle * axis_angle).sum(-1, keepdim=True)[..., None]
    theta = theta2.clamp(min=1e-12).sqrt()
    small = theta2 < 1e-8
    # sin(t)/t and (1 - cos t)/t^2, with their Taylor series near 0.
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp(min=1e-12))
    x, y, z = axis_angle.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*x.shape, 3, 3)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def check_parents(parents: tuple[int, ...] | list[int]) -> None:
    """ValueError unless ``parents`` is a tree listed root first (each parent before its child)."""
    if not parents or parents[0] != -1:
        raise ValueError(f"the first joint must be the root (parent -1), got parents {parents}")
    for j, p in enumerate(parents[1:], start=1):
        if not 0 <= p < j:
            raise ValueError(f"joint {j} has parent {p}: parents must come before their children")


def forward_kinematics(
    parents: tuple[int, ...] | list[int],
    rest_joints: Float[Tensor, "*batch J 3"],
    rotations: Float[Tensor, "*batch J 3 3"],
    translation: Float[Tensor, "*batch 3"] | None = None,
) -> tuple[Float[Tensor, "*batch J 4 4"], Float[Tensor, "*batch J 3"]]:
    """Bone transforms (canonical -> posed) and posed joint positions.

    Joint ``j`` rotates by ``rotations[j]`` about its rest position, relative to its parent;
    the root also moves by ``translation``.
    """
    check_parents(parents)
    J = len(parents)
    if rest_joints.shape[-2] != J or rotations.shape[-3] != J:
        raise ValueError(
            f"{J} joints in the skeleton, but rest_joints {tuple(rest_joints.shape)} and "
            f"rotations {tuple(rotations.shape)}"
        )
    batch = rest_joints.shape[:-2]
    frames: list[Tensor] = []  # each joint's posed world frame (4x4)
    for j, p in enumerate(parents):
        offset = rest_joints[..., j, :] - (rest_joints[..., p, :] if p >= 0 else 0.0)
        if p < 0 and translation is not None:
            offset = offset + translation
        local = _homogeneous(rotations[..., j, :, :], offset)
        frames.append(local if p < 0 else frames[p] @ local)
    world = torch.stack(frames, dim=-3)
    posed_joints = world[..., :3, 3]
    # G_j = W_j @ T(-rest_j): rotate about the rest joint, then place it.
    shift = world[..., :3, :3] @ rest_joints[..., None]
    transforms = world.clone()
    transforms[..., :3, 3] = posed_joints - shift[..., 0]
    assert transforms.shape == (*batch, J, 4, 4)
    return transforms, posed_joints


def _homogeneous(rotation: Tensor, translation: Tensor) -> Tensor:
    top = torch.cat([rotation, translation[..., None]], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def linear_blend_skinning(
    points: Float[Tensor, "n 3"],
    weights: Float[Tensor, "n J"],
    bone_transforms: Float[Tensor, "J 4 4"],
) -> tuple[Float[Tensor, "n 3"], Float[Tensor, "n 3 3"]]:
    """Posed points ``sum_j w_j G_j x`` and the blended linear parts (to carry orientations)."""
    blended = torch.einsum("nj,jab->nab", weights, bone_transforms)
    posed = (blended[:, :3, :3] @ points[:, :, None])[..., 0] + blended[:, :3, 3]
    return posed, blended[:, :3, :3]


def bone_children(parents: tuple[int, ...] | list[int]) -> list[list[int]]:
    """The children of each joint."""
    children: list[list[int]] = [[] for _ in parents]
    for j, p in enumerate(parents):
        if p >= 0:
            children[p].append(j)
    return children


def bone_segments(
    rest_joints: Float[Tensor, "J 3"], parents: tuple[int, ...] | list[int]
) -> tuple[Float[Tensor, "k 3"], Float[Tensor, "k 3"], list[int]]:
    """The body parts each joint moves, as segments ``(starts, ends, owner joint)``: joint to
    child for every child; a leaf (head, hand, foot) extends its parent's bone by half."""
    starts, ends, owners = [], [], []
    for j, kids in enumerate(bone_children(parents)):
        if kids:
            targets = [rest_joints[k] for k in kids]
        elif parents[j] >= 0:
            targets = [rest_joints[j] + 0.5 * (rest_joints[j] - rest_joints[parents[j]])]
        else:
            targets = [rest_joints[j]]
        for end in targets:
            starts.append(rest_joints[j])
            ends.append(end)
            owners.append(j)
    return torch.stack(starts), torch.stack(ends), owners


def distance_to_bones(
    points: Float[Tensor, "n 3"],
    rest_joints: Float[Tensor, "J 3"],
    parents: tuple[int, ...] | list[int],
) -> Float[Tensor, "n J"]:
    """Distance of each point to the body part each joint moves (see :func:`bone_segments`)."""
    starts, ends, owners = bone_segments(rest_joints, parents)
    per_segment = _segment_distance(points, starts, ends)
    owner = torch.tensor(owners, device=points.device)
    out = points.new_full((points.shape[0], len(parents)), float("inf"))
    return out.scatter_reduce(1, owner.expand(points.shape[0], -1), per_segment, reduce="amin")


def _segment_distance(points: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Distances ``(n, k)`` from ``points`` to the segments ``a[k] -> b[k]``."""
    ab = b - a
    ap = points[:, None, :] - a[None]
    t = ((ap * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-12)).clamp(0.0, 1.0)
    return (ap - t[..., None] * ab).norm(dim=-1)


def bone_skinning_weights(
    points: Float[Tensor, "n 3"],
    rest_joints: Float[Tensor, "J 3"],
    parents: tuple[int, ...] | list[int],
    falloff: float = 0.05,
) -> Float[Tensor, "n J"]:
    """Smooth skinning weights from distances to the bones: ``softmax(-d^2 / falloff^2)``
    (a nearest-bone prior, standing in for SMPL's per-vertex weights)."""
    d = distance_to_bones(points, rest_joints, parents)
    return F.softmax(-((d / falloff) ** 2), dim=-1)


def rotmat_to_quat(matrix: Float[Tensor, "*batch 3 3"]) -> Float[Tensor, "*batch 4"]:
    """Unit quaternions ``(w, x, y, z)`` of rotation matrices (any of the four branches, picked
    for stability); a nearly orthonormal matrix gives the nearest rotation's quaternion."""
    m = matrix
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
            torch.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
        ],
        dim=-2,
    )  # each row is 4 q_k q (up to scale) for the branch k with the largest |q_k|
    diagonal = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22,
                            1 - m00 - m11 + m22], -1)  # fmt: skip
    best = diagonal.argmax(dim=-1)
    picked = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4))[
        ..., 0, :
    ]
    quat = F.normalize(picked, dim=-1)
    return torch.where(quat[..., :1] < 0, -quat, quat)


def quat_multiply(
    a: Float[Tensor, "*batch 4"], b: Float[Tensor, "*batch 4"]
) -> Float[Tensor, "*batch 4"]:
    """Hamilton product ``a * b`` of quaternions ``(w, x, y, z)`` (rotation b, then a)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )
