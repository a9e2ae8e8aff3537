"""Camera paths for videos: turntables around the scene the training cameras look at and smooth
paths through keyframes (nerfstudio camera-path files: ``nerfstudio_camera_path.py``).

Every path is a :class:`Cameras` batch (OpenCV camera-to-world, one camera per video frame) in
the run's world coordinates, i.e. those of its training cameras.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from tensorfields.core.projection import quat_to_rotmat
from tensorfields.core.skinning import quat_multiply, rotmat_to_quat
from tensorfields.data.cameras import Cameras

MAX_ELEVATION = math.radians(85.0)  # a camera straight above the centre has no defined 'right'


def resize_cameras(cameras: Cameras, width: int, height: int) -> Cameras:
    """The same cameras at another image size, keeping the vertical field of view and square
    pixels: a wider frame shows more of the sides instead of stretching the scene."""
    s = height / cameras.height
    sx = width / cameras.width
    return Cameras(
        cameras.c2w, cameras.fx * s, cameras.fy * s, cameras.cx * sx, cameras.cy * s, width, height
    )


def look_at_centre(cameras: Cameras, hint: Float[Tensor, "3"] | None = None) -> Float[Tensor, "3"]:
    """The point nearest to all optical axes in least squares: what the cameras look at. When
    the axes are (nearly) parallel (one camera, as in a monocular video, or a forward-facing
    rig) they meet nowhere: then the point of their mean axis nearest to ``hint`` (e.g. the
    centre of the scene box), or ValueError without one."""
    c2w = cameras.c2w.double()
    origins, dirs = c2w[:, :3, 3], F.normalize(c2w[:, :3, 2], dim=-1)
    projector = torch.eye(3, dtype=c2w.dtype) - dirs[:, :, None] * dirs[:, None, :]
    a, b = projector.sum(0), (projector @ origins[:, :, None]).sum(0)[:, 0]
    if torch.linalg.eigvalsh(a / len(cameras)).min() > 1e-6:
        return torch.linalg.solve(a, b).to(cameras.c2w.dtype)
    if hint is None:
        raise ValueError(
            "the cameras' optical axes are (nearly) parallel, so there is no centre to orbit: "
            "use --path interpolate or a camera-path file"
        )
    origin, axis = origins.mean(0), F.normalize(dirs.mean(0), dim=0)
    depth = (hint.double() - origin) @ axis
    return (origin + depth * axis).to(cameras.c2w.dtype)


def scene_up(cameras: Cameras) -> Float[Tensor, "3"]:
    """The scene's up axis: the direction the cameras' right (x) axes are all perpendicular to
    (exact for cameras without roll, however unevenly their elevations are spread, where the
    mean up vector tilts), signed like their mean up vector (-y of OpenCV cameras)."""
    c2w = cameras.c2w.double()
    mean_up, rights = -c2w[:, :3, 1].mean(0), c2w[:, :3, 0]
    values, vectors = torch.linalg.eigh(rights.T @ rights / len(cameras))
    # The right axes span a plane: up is its normal. All (nearly) parallel: the mean up, made
    # perpendicular to them.
    up = vectors[:, 0] if values[1] > 1e-3 else mean_up - (mean_up @ vectors[:, 2]) * vectors[:, 2]
    if up.norm() < 1e-6 or abs(up @ mean_up) < 1e-6:
        raise ValueError("the cameras' up vectors cancel out: no up axis to orbit about")
    up = up * torch.sign(up @ mean_up)
    return (up / up.norm()).to(cameras.c2w.dtype)


def look_at(
    positions: Float[Tensor, "n 3"], target: Float[Tensor, "3"], up: Float[Tensor, "3"]
) -> Float[Tensor, "n 4 4"]:
    """OpenCV camera-to-world matrices at ``positions`` looking at ``target``, image-up along
    ``up`` (as far as it is not the viewing direction; looking along ``up``, any right axis)."""
    forward = F.normalize(target - positions, dim=-1)
    right = torch.linalg.cross(forward, up.expand_as(forward))
    along_up = right.norm(dim=-1, keepdim=True) < 1e-9
    if along_up.any():
        axis = torch.eye(3, dtype=forward.dtype)[forward.abs().argmin(dim=-1)]
        right = torch.where(along_up, torch.linalg.cross(forward, axis), right)
    right = F.normalize(right, dim=-1)
    down = torch.linalg.cross(forward, right)
    c2w = torch.zeros(len(positions), 4, 4, dtype=positions.dtype)
    c2w[:, :3, 0], c2w[:, :3, 1], c2w[:, :3, 2] = right, down, forward
    c2w[:, :3, 3], c2w[:, 3, 3] = positions, 1.0
    return c2w


def _orbit_cameras(
    cameras: Cameras,
    azimuth: Float[Tensor, " n"],
    elevation: Float[Tensor, " n"] | None,
    swing: Float[Tensor, " n"],
    radius: float | None,
    centre: Float[Tensor, "3"] | None,
    size: tuple[int | None, int | None],
) -> Cameras:
    """Cameras on a sphere about ``centre`` (default: the look-at centre), looking at it, at
    the training cameras' mean distance, mean elevation (above the plane through the centre
    across the up axis) + ``swing`` and mean intrinsics; azimuth 0 is the first camera's side."""
    centre = look_at_centre(cameras) if centre is None else centre
    centre, up = centre.double(), scene_up(cameras).double()
    offsets = cameras.c2w[:, :3, 3].double() - centre
    distance = offsets.norm(dim=-1).clamp_min(1e-12)
    radius = float(distance.mean()) if radius is None else radius
    if elevation is None:
        elevation = torch.asin((offsets @ up / distance).clamp(-1, 1)).mean().expand_as(azimuth)
    side = offsets[0] - (offsets[0] @ up) * up
    if side.norm() < 1e-6 * distance[0]:  # first camera straight above: any side will do
        side = torch.linalg.cross(up, torch.eye(3, dtype=up.dtype)[int(up.abs().argmin())])
    e1 = side / side.norm()
    e2 = torch.linalg.cross(up, e1)
    elevation = (elevation + swing).clamp(-MAX_ELEVATION, MAX_ELEVATION)[:, None]
    ring = azimuth.cos()[:, None] * e1 + azimuth.sin()[:, None] * e2
    positions = centre + radius * (elevation.cos() * ring + elevation.sin() * up)
    c2w = look_at(positions, centre, up).to(cameras.c2w.dtype)
    n = len(c2w)
    mean = [getattr(cameras, k).mean().expand(n) for k in ("fx", "fy", "cx", "cy")]
    path = Cameras(c2w, *mean, cameras.width, cameras.height)
    width, height = size
    return resize_cameras(path, width or cameras.width, height or cameras.height)


def orbit_path(
    cameras: Cameras,
    n_frames: int,
    width: int | None = None,
    height: int | None = None,
    turns: float = 1.0,
    elevation_deg: float | None = None,
    radius: float | None = None,
    centre: Float[Tensor, "3"] | None = None,
) -> Cameras:
    """A turntable: ``n_frames`` cameras circling the training cameras' look-at centre (or
    ``centre``) about the scene's up axis, at their mean distance and elevation (or the given
    ones), starting on the first camera's side; a full turn loops without a repeated frame."""
    _check_frames(n_frames)
    angle = 2 * math.pi * turns * torch.arange(n_frames, dtype=torch.float64) / n_frames
    elevation = None if elevation_deg is None else angle * 0 + math.radians(elevation_deg)
    swing = torch.zeros_like(angle)
    return _orbit_cameras(cameras, angle, elevation, swing, radius, centre, (width, height))


def spiral_path(
    cameras: Cameras,
    n_frames: int,
    width: int | None = None,
    height: int | None = None,
    turns: float = 2.0,
    swing_deg: float = 15.0,
    radius: float | None = None,
    centre: Float[Tensor, "3"] | None = None,
) -> Cameras:
    """An orbit whose elevation rises ``swing_deg`` above the mean and back below it, once
    over the video (so it loops), while circling ``turns`` times."""
    _check_frames(n_frames)
    t = torch.arange(n_frames, dtype=torch.float64) / n_frames
    angle = 2 * math.pi * turns * t
    swing = -math.radians(swing_deg) * torch.cos(2 * math.pi * t)
    return _orbit_cameras(cameras, angle, None, swing, radius, centre, (width, height))


def keyframe_order(cameras: Cameras) -> list[int]:
    """An order to visit cameras in: around the up axis when they surround what they look at
    (starting after the widest gap, so the path never crosses it), else as given (the capture
    order of a walk-through)."""
    try:
        centre, up = look_at_centre(cameras).double(), scene_up(cameras).double()
    except ValueError:
        return list(range(len(cameras)))
    offsets = cameras.c2w[:, :3, 3].double() - centre
    side = offsets - (offsets @ up)[:, None] * up
    e1 = F.normalize(side[int(side.norm(dim=-1).argmax())], dim=0)
    azimuth = torch.atan2(side @ torch.linalg.cross(up, e1), side @ e1)
    order = torch.argsort(azimuth)
    sorted_az = azimuth[order]
    gaps = torch.diff(sorted_az, append=sorted_az[:1] + 2 * math.pi)
    if len(cameras) < 3 or gaps.max() > 2 * math.pi / 3:
        return list(range(len(cameras)))
    start = (int(gaps.argmax()) + 1) % len(cameras)
    return torch.roll(order, -start).tolist()


def _check_frames(n_frames: int) -> None:
    if n_frames < 1:
        raise ValueError(f"a camera path needs at least 1 frame, got {n_frames}")


# Interpolation through keyframes: centripetal Catmull-Rom positions, squad rotations.


def keyframe_frames(keyframes: Cameras, n_frames: int) -> list[int]:
    """The frame each keyframe is hit at: first and last frame included, the frames between
    shared out by how far each segment moves and turns (so the speed stays even)."""
    k = len(keyframes)
    if n_frames < k:
        raise ValueError(f"{n_frames} frames cannot pass through {k} keyframes")
    if k == 1:
        return [0]
    positions = keyframes.c2w[:, :3, 3].double()
    moves = (positions[1:] - positions[:-1]).norm(dim=-1)
    quats = _aligned_quats(keyframes)
    turns = 2 * torch.acos((quats[1:] * quats[:-1]).sum(-1).abs().clamp(max=1.0))
    weight = torch.full((k - 1,), 1e-9, dtype=torch.float64)  # all equal: even shares
    for amount in (moves, turns):
        if amount.mean() > 1e-9:
            weight = weight + amount / amount.mean()
    share = weight / weight.sum() * (n_frames - k)  # frames beyond the one each segment gets
    extra = share.floor().long()
    leftover = n_frames - k - int(extra.sum())
    extra[torch.argsort(share - extra, descending=True)[:leftover]] += 1
    return [0, *torch.cumsum(1 + extra, 0).tolist()]


def _aligned_quats(cameras: Cameras) -> Float[Tensor, "n 4"]:
    """Quaternions of the rotations, signs flipped so neighbours are on the same hemisphere."""
    quats = rotmat_to_quat(cameras.c2w[:, :3, :3].double())
    for i in range(1, len(quats)):
        if (quats[i] * quats[i - 1]).sum() < 0:
            quats[i] = -quats[i]
    return quats


def _qlog(q: Float[Tensor, "*b 4"]) -> Float[Tensor, "*b 3"]:
    v = q[..., 1:]
    s = v.norm(dim=-1, keepdim=True)
    return v * torch.atan2(s, q[..., :1]) / s.clamp_min(1e-12)


def _qexp(u: Float[Tensor, "*b 3"]) -> Float[Tensor, "*b 4"]:
    theta = u.norm(dim=-1, keepdim=True)
    sinc = torch.where(theta > 1e-12, theta.sin() / theta.clamp_min(1e-12), 1.0)
    return torch.cat([theta.cos(), u * sinc], dim=-1)


def _slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """``a exp(t log(a^-1 b))`` (no sign flip: the callers align their quaternions)."""
    conj = a * a.new_tensor([1.0, -1.0, -1.0, -1.0])
    return quat_multiply(a, _qexp(t * _qlog(quat_multiply(conj, b))))


def _squad_controls(q: Float[Tensor, "k 4"]) -> Float[Tensor, "k 4"]:
    """Squad's inner quaternions: the rotation curve has a continuous tangent at keyframes."""
    controls = q.clone()
    conj = q * q.new_tensor([1.0, -1.0, -1.0, -1.0])
    for i in range(1, len(q) - 1):
        logs = _qlog(quat_multiply(conj[i], q[i + 1])) + _qlog(quat_multiply(conj[i], q[i - 1]))
        controls[i] = quat_multiply(q[i], _qexp(-logs / 4))
    return controls


def _catmull_rom(p: Float[Tensor, "4 3"], h: Float[Tensor, "m 1"]) -> Float[Tensor, "m 3"]:
    """Centripetal Catmull-Rom between ``p[1]`` (h = 0) and ``p[2]`` (h = 1): no cusps or
    overshoot loops where keyframes bunch up."""
    gaps = (p[1:] - p[:-1]).norm(dim=-1).sqrt().clamp_min(1e-9)
    t0, t1, t2, t3 = torch.cat([gaps.new_zeros(1), torch.cumsum(gaps, 0)]).tolist()
    t = t1 + h * (t2 - t1)

    def mix(a: Tensor, b: Tensor, ta: float, tb: float) -> Tensor:
        return ((tb - t) * a + (t - ta) * b) / (tb - ta)

    a1, a2, a3 = mix(p[0], p[1], t0, t1), mix(p[1], p[2], t1, t2), mix(p[2], p[3], t2, t3)
    return mix(mix(a1, a2, t0, t2), mix(a2, a3, t1, t3), t1, t2)


def _even_speed(p: Float[Tensor, "4 3"], m: int) -> Float[Tensor, "m 1"]:
    """Spline parameters of ``m`` frames spaced evenly along the segment's arc length (the
    spline's own parameter slows down near tight keyframes)."""
    dense = torch.linspace(0, 1, 32 * m + 1, dtype=p.dtype)[:, None]
    points = _catmull_rom(p, dense)
    length = torch.cat([p.new_zeros(1), torch.cumsum((points[1:] - points[:-1]).norm(dim=-1), 0)])
    if length[-1] < 1e-12:
        return dense[::32][:m]
    target = torch.arange(m, dtype=p.dtype) / m * length[-1]
    hi = torch.searchsorted(length, target, right=True).clamp(1, len(length) - 1)
    lo = hi - 1
    frac = (target - length[lo]) / (length[hi] - length[lo]).clamp_min(1e-12)
    return (dense[lo, 0] + frac * (dense[hi, 0] - dense[lo, 0]))[:, None]


def interpolate_path(
    keyframes: Cameras, n_frames: int, width: int | None = None, height: int | None = None
) -> Cameras:
    """``n_frames`` cameras moving smoothly through every keyframe, in order: positions on a
    centripetal Catmull-Rom spline, rotations by squad (spherical, tangent-continuous),
    intrinsics linearly. Keyframe i is exactly frame ``keyframe_frames(...)[i]``."""
    _check_frames(n_frames)
    hits = keyframe_frames(keyframes, n_frames)
    c2w = keyframes.c2w.double()
    intrinsics = torch.stack([keyframes.fx, keyframes.fy, keyframes.cx, keyframes.cy], -1)
    out_c2w = c2w[:1].repeat(n_frames, 1, 1)
    out_k = intrinsics[:1].repeat(n_frames, 1)
    points = c2w[:, :3, 3]
    padded = torch.cat([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])
    quats = _aligned_quats(keyframes)
    controls = _squad_controls(quats)
    for i in range(len(hits) - 1):
        frames = torch.arange(hits[i], hits[i + 1])
        h = _even_speed(padded[i : i + 4], len(frames))
        out_c2w[frames, :3, 3] = _catmull_rom(padded[i : i + 4], h)
        outer = _slerp(quats[i].expand(len(h), 4), quats[i + 1].expand(len(h), 4), h)
        inner = _slerp(controls[i].expand(len(h), 4), controls[i + 1].expand(len(h), 4), h)
        out_c2w[frames, :3, :3] = quat_to_rotmat(_slerp(outer, inner, 2 * h * (1 - h)))
        out_k[frames] = intrinsics[i] + h.to(intrinsics) * (intrinsics[i + 1] - intrinsics[i])
    out_c2w = out_c2w.to(keyframes.c2w.dtype)
    out_c2w[hits], out_k[hits] = keyframes.c2w, intrinsics  # keyframes exactly, not 1e-7 off
    path = Cameras(out_c2w, *out_k.unbind(-1), keyframes.width, keyframes.height)
    return resize_cameras(path, width or keyframes.width, height or keyframes.height)


# nerfstudio camera-path JSON (ns-render camera-path): OpenGL poses, vertical fov in degrees.
