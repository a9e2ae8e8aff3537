import math

import pytest
import torch

from tensorfields.core.projection import quat_to_rotmat
from tensorfields.core.skinning import (
    axis_angle_to_matrix,
    bone_skinning_weights,
    forward_kinematics,
    linear_blend_skinning,
    quat_multiply,
    rotmat_to_quat,
)

CHAIN = (-1, 0, 1)  # shoulder -> elbow -> wrist
REST = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])


def test_axis_angle_quarter_turn_and_zero():
    r = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    assert torch.allclose(r, torch.tensor([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]), atol=1e-6)
    zero = torch.zeros(3, requires_grad=True)
    axis_angle_to_matrix(zero).sum().backward()
    assert torch.isfinite(zero.grad).all()


def test_forward_kinematics_bends_the_elbow():
    rotations = axis_angle_to_matrix(torch.tensor([[0, 0, 0], [0, 0, math.pi / 2], [0, 0, 0.0]]))
    transforms, joints = forward_kinematics(CHAIN, REST, rotations, torch.tensor([0, 0, 5.0]))
    assert torch.allclose(joints, torch.tensor([[0, 0, 5.0], [1, 0, 5], [1, 1, 5]]), atol=1e-6)
    # A point half way along the forearm (attached to the elbow) follows it.
    point = torch.tensor([[1.5, 0.0, 0.0]])
    weights = torch.tensor([[0.0, 1.0, 0.0]])
    posed, linear = linear_blend_skinning(point, weights, transforms)
    assert torch.allclose(posed, torch.tensor([[1.0, 0.5, 5.0]]), atol=1e-6)
    assert torch.allclose(linear[0], rotations[1], atol=1e-6)


def test_lbs_blends_transforms_linearly():
    rotations = axis_angle_to_matrix(torch.tensor([[0, 0, 0], [0, 0, math.pi / 2], [0, 0, 0.0]]))
    transforms, _ = forward_kinematics(CHAIN, REST, rotations)
    point = torch.tensor([[2.0, 0.0, 0.0]])
    posed, _ = linear_blend_skinning(point, torch.tensor([[0.5, 0.5, 0.0]]), transforms)
    # Half of (2, 0, 0) unmoved plus half of the elbow-rotated (1, 1, 0).
    assert torch.allclose(posed, torch.tensor([[1.5, 0.5, 0.0]]), atol=1e-6)


def test_skeleton_checks():
    with pytest.raises(ValueError, match="root"):
        forward_kinematics((0, 0), REST[:2], torch.eye(3).repeat(2, 1, 1))
    with pytest.raises(ValueError, match="before their children"):
        forward_kinematics((-1, 2, 0), REST, torch.eye(3).repeat(3, 1, 1))
    with pytest.raises(ValueError, match="3 joints"):
        forward_kinematics(CHAIN, REST[:2], torch.eye(3).repeat(3, 1, 1))


def test_bone_weights_follow_the_nearest_bone():
    points = torch.tensor([[0.5, 0.01, 0.0], [1.5, -0.01, 0.0], [2.02, 0.0, 0.0]])
    weights = bone_skinning_weights(points, REST, CHAIN, falloff=0.05)
    assert torch.allclose(weights.sum(-1), torch.ones(3))
    assert weights.argmax(-1).tolist() == [0, 1, 2]


def test_quaternions_round_trip_and_compose():
    g = torch.Generator().manual_seed(0)
    a = axis_angle_to_matrix(torch.randn(64, 3, generator=g) * 2)
    b = axis_angle_to_matrix(torch.randn(64, 3, generator=g) * 2)
    qa, qb = rotmat_to_quat(a), rotmat_to_quat(b)
    assert torch.allclose(quat_to_rotmat(qa), a, atol=1e-5)
    assert torch.allclose(quat_to_rotmat(quat_multiply(qa, qb)), a @ b, atol=1e-5)
    half_turn = torch.diag(torch.tensor([1.0, -1.0, -1.0]))  # w = 0: the other branches
    assert torch.allclose(quat_to_rotmat(rotmat_to_quat(half_turn)), half_turn, atol=1e-6)
