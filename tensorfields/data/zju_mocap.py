"""ZJU-MoCap as preprocessed by ARAH (``preprocess_ZJU-MoCap.py``) and read by 3DGS-Avatar.

Layout of one subject folder (e.g. ``CoreView_377/``)::

    cam_params.json      {"all_cam_names": ["1", ...], "1": {"K", "D", "R", "T"}, ...}
    1/000000.jpg         image of camera "1" at frame 000000, and its mask 1/000000.png
    models/000000.npz    SMPL fit of that frame (bone_transforms, trans, poses, Jtr_posed, ...)

Conventions of the files: ``R, T`` map world to camera (``x_cam = R x_world + T``, OpenCV axes,
metres: ARAH divides ZJU's millimetres by 1000); ``K`` puts pixel centres at integer coordinates
(OpenCV); ``D`` = ``(k1, k2, p1, p2, k3)``. ``bone_transforms`` are SMPL's ``A`` from the rest
(T-pose) body of the subject's betas to the posed body *without* ``trans``, which
``Jtr_posed`` (posed joints) includes. Masks are ZJU's part labels: non-zero = person.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor

from tensorfields.data.cameras import Cameras
from tensorfields.data.errors import DataError
from tensorfields.data.frames import FrameSplit, Skeleton
from tensorfields.data.images import check_background, check_downscale, output_size
from tensorfields.data.transforms import read_json

SMPL_SKELETON = Skeleton(
    names=("pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
           "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
           "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
           "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand"),
    parents=(-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21),
)  # fmt: skip

# 3DGS-Avatar's monocular protocol (configs/dataset/zjumocap_*_mono.yaml): train on camera "1";
# frames [0, end) of the sorted models (end 0 = all); test on every other camera each 30th frame.
TRAIN_CAMERA = "1"
MONO_END_FRAME = {"CoreView_377": 570, "CoreView_386": 540, "CoreView_387": 540,
                  "CoreView_394": 475}  # fmt: skip
TEST_EVERY = 30
MODEL_SHAPES = {"bone_transforms": (24, 4, 4), "trans": (3,), "Jtr_posed": (24, 3),
                "root_orient": (3,), "pose_body": (63,), "pose_hand": (6,)}  # fmt: skip


def is_zju_mocap_subject(path: Path) -> bool:
    """Whether ``path`` is a subject folder of this layout (cam_params.json and models/)."""
    return (Path(path) / "cam_params.json").is_file() and (Path(path) / "models").is_dir()


def _matrix(value: object, shape: tuple[int, ...], path: Path, what: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(path, f"{what} must be an array of numbers") from None
    if array.size != int(np.prod(shape)) or not np.isfinite(array).all():
        raise DataError(path, f"{what} must be {shape} finite numbers, got shape {array.shape}")
    return array.reshape(shape)


def read_camera(
    meta: dict, name: str, path: Path
) -> tuple[Float[np.ndarray, "3 3"], Float[np.ndarray, " 5"], Float[np.ndarray, "4 4"]]:
    """(K 3x3, D 5, camera-to-world 4x4 OpenCV) of camera ``name`` in cam_params.json."""
    if not isinstance(meta.get(name), dict):
        known = meta.get("all_cam_names", [k for k in meta if k != "all_cam_names"])
        raise DataError(path, f"camera {name!r} not in this file (it has {known})")
    cam = meta[name]
    for key in ("K", "R", "T"):
        if key not in cam:
            raise DataError(path, f"camera {name!r}: missing key '{key}'")
    K = _matrix(cam["K"], (3, 3), path, f"camera {name!r}: K")
    if K[0, 0] <= 0 or K[1, 1] <= 0:
        raise DataError(path, f"camera {name!r}: K must have positive focal lengths")
    D = np.zeros(5)
    raw = np.ravel(np.asarray(cam.get("D", []), dtype=np.float64))
    if raw.size not in (0, 4, 5) or not np.isfinite(raw).all():
        raise DataError(path, f"camera {name!r}: D must hold 4 or 5 coefficients (k1 k2 p1 p2 k3)")
    D[: raw.size] = raw
    R = _matrix(cam["R"], (3, 3), path, f"camera {name!r}: R")
    T = _matrix(cam["T"], (3,), path, f"camera {name!r}: T")
    c2w = np.eye(4)
    c2w[:3, :3], c2w[:3, 3] = R.T, -R.T @ T  # inverse of the world-to-camera [R | T]
    return K, D, c2w


def read_model(path: Path) -> dict[str, np.ndarray]:
    """The arrays of one frame's npz that we use, checked (float64, shapes of MODEL_SHAPES)."""
    if not path.is_file():
        raise DataError(path, "model file not found")
    try:
        with np.load(path) as data:
            keys = sorted(data.files)
            arrays = {key: data[key] for key in MODEL_SHAPES if key in keys}
    except Exception as error:  # not a zip, truncated, pickled objects, ...
        raise DataError(path, f"cannot read npz: {error}") from None
    missing = [key for key in MODEL_SHAPES if key not in arrays]
    if missing:
        raise DataError(path, f"missing key(s) {missing} (it has {keys})")
    return {key: _matrix(arrays[key], shape, path, key) for key, shape in MODEL_SHAPES.items()}


def _undistort(pixels: Tensor, K: np.ndarray, D: np.ndarray, mode: str) -> Tensor:
    """Resample (c, h, w) ``pixels`` to the ideal pinhole camera K: each output pixel looks up
    where the lens model D puts it in the recorded image (the mapping cv2.undistort inverts)."""
    h, w = pixels.shape[-2:]
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5  # pixel centres at +0.5
    k1, k2, p1, p2, k3 = D.tolist()
    v, u = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
    x, y = (u.double() - cx) / fx, (v.double() - cy) / fy
    r2 = x * x + y * y
    radial = 1 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    grid = torch.stack([(fx * xd + cx) / w * 2 - 1, (fy * yd + cy) / h * 2 - 1], dim=-1)
    out = F.grid_sample(pixels[None], grid[None].float(), mode, "zeros", align_corners=False)
    return out[0]


def load_view(
    image_path: Path,
    mask_path: Path,
    K: Float[np.ndarray, "3 3"],
    D: Float[np.ndarray, " 5"],
    downscale: float,
    background: Sequence[float],
) -> tuple[Float[Tensor, "h w 3"], Float[Tensor, "h w"], tuple[int, int]]:
    """One image composited on ``background`` outside its mask, undistorted (if D != 0) and
    area-downscaled, its coverage (0/1 at downscale 1), and its stored (width, height)."""
    arrays = []
    for path, what in ((image_path, "image"), (mask_path, "mask")):
        try:
            arrays.append(np.asarray(iio.imread(path, plugin="pillow")))
        except FileNotFoundError:
            raise DataError(path, f"{what} file not found") from None
        except Exception as error:  # decoders raise many types
            raise DataError(path, f"cannot decode {what}: {error}") from None
    image, mask = arrays
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] < 3:
        raise DataError(image_path, f"unsupported image layout {image.shape} (expected RGB)")
    if mask.shape[:2] != image.shape[:2]:
        raise DataError(mask_path, f"mask size {mask.shape[:2]} differs from {image_path}")
    coverage = mask[..., :3].any(axis=-1) if mask.ndim == 3 else mask != 0
    height, width = image.shape[:2]
    rgb = torch.from_numpy(image[..., :3].astype(np.float32) / 255.0).permute(2, 0, 1)
    alpha = torch.from_numpy(coverage.astype(np.float32))[None]
    if np.any(D != 0):
        rgb, alpha = _undistort(rgb, K, D, "bilinear"), _undistort(alpha, K, D, "nearest")
    bg = torch.tensor(background, dtype=torch.float32)[:, None, None]
    rgba = torch.cat([rgb * alpha + bg * (1 - alpha), alpha])
    size = output_size(width, height, downscale)
    if size != (width, height):
        rgba = F.interpolate(rgba[None], size=(size[1], size[0]), mode="area")[0]
    return rgba[:3].permute(1, 2, 0).contiguous(), rgba[3].contiguous(), (width, height)


def _selection(subject: Path, split: str, meta: dict) -> tuple[list[str], tuple[int, int, int]]:
    """3DGS-Avatar's monocular cameras and frames for ``split`` of ``subject``."""
    end = MONO_END_FRAME.get(subject.name, 0)
    if split == "train":
        return [TRAIN_CAMERA], (0, end, 1)
    known = meta.get("all_cam_names") or [k for k in meta if k != "all_cam_names"]
    others = [str(c) for c in known if str(c) != TRAIN_CAMERA]
    return others, ((0, 1, 1) if split == "val" else (0, end, TEST_EVERY))


def _subject_frames(
    subject: Path, cams: list[str], span: tuple[int, int, int]
) -> tuple[list[str], list[dict[str, np.ndarray]]]:
    """Stems and model fits of the frames ``span`` selects (positions in sorted models/*.npz)."""
    stems = sorted(p.stem for p in (subject / "models").glob("*.npz"))
    if not stems:
        raise DataError(subject / "models", "no model files (*.npz) in this folder")
    for cam in cams:  # ARAH writes images only for frames it has a model of
        orphans = sorted({p.stem for p in (subject / cam).glob("*.jpg")} - set(stems))
        if orphans:
            raise DataError(subject / "models" / f"{orphans[0]}.npz", "model file not found")
    start, end, step = span
    chosen = stems[slice(start, end or None, step)]
    if not chosen:
        raise DataError(subject / "models", f"frames {span} select none of {len(stems)}")
    return chosen, [read_model(subject / "models" / f"{stem}.npz") for stem in chosen]


def load_zju_mocap(
    subjects: Sequence[Path],
    split: str = "train",
    cameras: Sequence[str] | None = None,
    frames: tuple[int, int, int] | None = None,
    downscale: float = 1.0,
    background: Sequence[float] = (0.0, 0.0, 0.0),
) -> FrameSplit:
    """Frames of the subject folders (one identity each, named by its folder), camera by camera.

    ``frames = (start, end, step)`` slices each subject's sorted ``models/*.npz`` (``end`` 0 =
    through the last, as in 3DGS-Avatar). Defaults follow 3DGS-Avatar's monocular protocol:
    ``train`` camera "1", frames ``(0, E, 1)``; ``val`` the other cameras, frame 0; ``test``
    the other cameras (novel views), ``(0, E, 30)``; ``E`` is 570/540/540/475 for subjects
    377/386/387/394, else all frames. Images are undistorted with ``D`` (a pure-torch resampling;
    no OpenCV), composited on ``background`` outside the mask and shrunk by ``downscale`` (2 ->
    half). World space is ZJU's calibration frame (metres); ``cx, cy = K[:2, 2] + 0.5`` since
    tensorfields puts pixel centres at +0.5. ``bone_transforms`` = the npz's plus ``trans``;
    ``rest_joints`` = ``inverse(G_j) @ Jtr_posed_j``, averaged over the loaded frames.
    """
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    downscale, background = check_downscale(downscale), check_background(background)
    if not subjects:
        raise ValueError("no subject folders given")
    views, ids, names, rest = [], [], [], []
    for identity, subject in enumerate(Path(s) for s in subjects):
        if not subject.is_dir():
            raise DataError(subject, "subject folder does not exist")
        params_path = subject / "cam_params.json"
        meta = read_json(params_path)
        cams, span = _selection(subject, split, meta)
        cams, span = list(cameras or cams), frames or span
        if not cams:
            raise DataError(params_path, f"no cameras for split {split!r} besides camera 1")
        lenses = {cam: read_camera(meta, cam, params_path) for cam in cams}
        chosen, fits = _subject_frames(subject, cams, span)
        G = np.stack([fit["bone_transforms"] for fit in fits])
        G[:, :, :3, 3] += np.stack([fit["trans"] for fit in fits])[:, None]
        # Rigid inverse: rest joint = R^T (posed joint - t), the same in every frame.
        posed = np.stack([fit["Jtr_posed"] for fit in fits]) - G[:, :, :3, 3]
        rest.append(np.einsum("fjba,fjb->ja", G[:, :, :3, :3], posed) / len(fits))
        for cam in cams:
            for stem, fit, transforms in zip(chosen, fits, G, strict=True):
                pose = np.concatenate([fit["root_orient"], fit["pose_body"], fit["pose_hand"]])
                image, mask = subject / cam / f"{stem}.jpg", subject / cam / f"{stem}.png"
                views.append((image, mask, *lenses[cam], pose.reshape(24, 3), transforms))
                ids.append(identity)
                names.append(f"{subject.name}_c{cam}_{stem}")

    with ThreadPoolExecutor(max_workers=min(8, len(views))) as pool:
        loaded = list(pool.map(lambda v: load_view(*v[:4], downscale, background), views))
    for (path, *_), (_, _, size) in zip(views, loaded, strict=True):
        if size != loaded[0][2]:
            raise DataError(path, f"image size {size} differs from {loaded[0][2]} of {views[0][0]}")
    (width, height), (out_w, out_h) = loaded[0][2], output_size(*loaded[0][2], downscale)

    def stack(index: int) -> Tensor:
        return torch.tensor(np.stack([v[index] for v in views]), dtype=torch.float32)

    K, scale = stack(2), torch.tensor([out_w / width, out_h / height])
    focal, centre = K[:, [0, 1], [0, 1]] * scale, (K[:, [0, 1], [2, 2]] + 0.5) * scale
    return FrameSplit(
        cameras=Cameras(stack(4), *focal.unbind(1), *centre.unbind(1), out_w, out_h),
        images=torch.stack([rgb for rgb, _, _ in loaded]),
        names=names,
        alphas=torch.stack([alpha for _, alpha, _ in loaded]),
        identity=torch.tensor(ids, dtype=torch.long),
        pose=stack(5),
        bone_transforms=stack(6),
        identity_names=[Path(s).name for s in subjects],
        rest_joints=torch.tensor(np.stack(rest), dtype=torch.float32),
        skeleton=SMPL_SKELETON,
    )
