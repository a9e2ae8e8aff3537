"""``tf-export mesh`` / ``pointcloud``: a tiny trained run and an analytic sphere model, the
files they write read back, and the errors for runs that cannot be exported so."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.cli import export as export_cli
from tensorfields.cli import train as train_cli
from tensorfields.cli.errors import run_cli
from tensorfields.data.cameras import Cameras
from tensorfields.data.ply import read_ply_vertices
from tensorfields.data.point_clouds import read_points
from tensorfields.models.base import Model
from tensorfields.pipeline.checkpoint import load_checkpoint
from tensorfields.pipeline.config import load_config
from tensorfields.pipeline.mesh_export import (
    extract_model_mesh,
    grid_resolution,
    sample_density_grid,
    write_mesh,
)
from tensorfields.pipeline.point_cloud_export import back_project
from tensorfields.pipeline.registry import build_model

SMALL = [
    "--scene", "blocks", "--downscale", "4", "--trainer.max-iterations", "2",
    "--trainer.batch-size", "256", "--trainer.eval-every", "0",
    "--trainer.final-eval-every", "0", "--trainer.device", "cpu",
]  # fmt: skip
TINY_MODEL = {"tensorf-vm": ["--model.voxels-init", "4096"], "splat": ["--model.init-count", "500"]}


def _train(method: str, out: Path) -> Path:
    train_cli.main([method, *SMALL, *TINY_MODEL[method], "--output-dir", str(out)])
    (run,) = (out / "blocks" / method).iterdir()
    return run


@pytest.fixture(scope="module")
def tensorf_run(tmp_path_factory: pytest.TempPathFactory, _isolated_cache_and_one_thread) -> Path:
    return _train("tensorf-vm", tmp_path_factory.mktemp("outputs"))


def _load(run: Path) -> Model:
    model = build_model(load_config(run / "config.yaml"))
    model.load_checkpoint_state(load_checkpoint(run / "checkpoints" / "last.pt")["model"])
    return model


def read_ply_faces(path: Path) -> np.ndarray:
    """The triangles of a binary PLY whose vertices are float / uchar scalars."""
    raw = path.read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    lines = raw[:end].decode("ascii").splitlines()
    assert "property list uchar int vertex_indices" in lines
    counts, stride, element = {}, 0, None
    for words in (line.split() for line in lines):
        if words[0] == "element":
            element, counts[words[1]] = words[1], int(words[2])
        elif words[0] == "property" and element == "vertex":
            stride += {"float": 4, "uchar": 1}[words[1]]
    vertices, faces = counts["vertex"], counts["face"]
    dtype = np.dtype([("n", "u1"), ("v", "<i4", (3,))])
    rows = np.frombuffer(raw, dtype, faces, end + vertices * stride)
    assert (rows["n"] == 3).all() and len(raw) == end + vertices * stride + 13 * faces
    return rows["v"]


def read_obj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    lines = path.read_text().splitlines()
    v = np.array([[float(x) for x in ln.split()[1:]] for ln in lines if ln.startswith("v ")])
    f = np.array([[int(x) for x in ln.split()[1:]] for ln in lines if ln.startswith("f ")])
    return v, f - 1


def test_trained_run_exports_mesh_and_point_cloud(tensorf_run: Path) -> None:
    # Two steps leave a near-empty field: pick a level inside its range (the default is not).
    model = _load(tensorf_run)
    box = model.density_bounds()
    level = float(sample_density_grid(model, box, grid_resolution(box, 16)).median())
    args = [str(tensorf_run), "mesh", "--resolution", "16", "--level", str(level)]
    export_cli.main(args)
    export_cli.main([*args, "--format", "obj"])
    ply, obj = tensorf_run / "export" / "mesh.ply", tensorf_run / "export" / "mesh.obj"
    columns = read_ply_vertices(ply)
    assert list(columns) == ["x", "y", "z", "red", "green", "blue"]
    assert columns["x"].dtype == np.float32 and columns["red"].dtype == np.uint8
    xyz = np.stack([columns[a] for a in "xyz"], axis=1)
    rgb = np.stack([columns[c] for c in ("red", "green", "blue")], axis=1) / 255.0
    faces = read_ply_faces(ply)
    assert len(faces) > 0 and faces.min() >= 0 and faces.max() < len(xyz)
    lo, hi = box[:3].numpy(), box[3:].numpy()
    assert ((xyz >= lo - 1e-5) & (xyz <= hi + 1e-5)).all()
    obj_v, obj_f = read_obj(obj)
    np.testing.assert_allclose(obj_v[:, :3], xyz, atol=1e-5)
    np.testing.assert_allclose(obj_v[:, 3:], rgb, atol=0.5 / 255 + 1e-4)
    np.testing.assert_array_equal(obj_f, faces)

    with pytest.raises(ValueError, match="outside the density grid's range"):
        export_cli.main([str(tensorf_run), "mesh", "--resolution", "16", "--level", "1e6"])

    cloud = ["pointcloud", "--every", "10", "--min-accumulation", "0", "--max-points", "200"]
    export_cli.main([str(tensorf_run), *cloud])
    path = tensorf_run / "export" / "pointcloud.ply"
    first = path.read_bytes()
    points, colours = read_points(path)  # what --model.init-points reads
    assert points.shape == (200, 3) and colours.shape == (200, 3)
    assert ((points >= box[:3] - 1e-4) & (points <= box[3:] + 1e-4)).all()  # marched in the box
    export_cli.main([str(tensorf_run), *cloud])
    assert path.read_bytes() == first  # seeded


class SphereModel(Model):
    """Density 100 per unit inside a sphere of radius 0.7, ramping down across its surface;
    colour 0.5 - 0.5 * view direction (head-on from outside: 0.5 + 0.5 * outward normal)."""

    centre = torch.tensor([1.0, 1.2, 0.9])
    radius = 0.7

    def density_bounds(self) -> Float[Tensor, "6"]:
        return torch.tensor([0.0, 0.0, 0.0, 2.0, 2.5, 2.0])

    def density_at(self, points: Float[Tensor, "n 3"]) -> Float[Tensor, " n"]:
        distance = (points - self.centre).norm(dim=-1)
        return (50.0 + 200.0 * (self.radius - distance)).clamp(0.0, 100.0)

    def color_at(self, points, directions) -> Float[Tensor, "n 3"]:
        return 0.5 - 0.5 * directions


def test_analytic_sphere_mesh_has_its_radius_and_colours(tmp_path: Path) -> None:
    model = SphereModel()
    mesh = extract_model_mesh(model, resolution=50, level=50.0, chunk=5000)  # cells of 0.05
    offset = mesh.vertices - SphereModel.centre
    radius = offset.norm(dim=-1)
    assert (radius - SphereModel.radius).abs().max() < 0.05 / 2  # half a cell
    outward = offset / radius[:, None]
    assert (mesh.colors - (0.5 + 0.5 * outward)).abs().max() < 0.04
    for fmt in ("ply", "obj"):
        write_mesh(tmp_path / f"sphere.{fmt}", mesh, fmt)
    columns = read_ply_vertices(tmp_path / "sphere.ply")
    assert len(columns["x"]) == len(mesh.vertices)
    assert len(read_ply_faces(tmp_path / "sphere.ply")) == len(mesh.faces)
    red = columns["red"] / 255.0
    np.testing.assert_allclose(red, mesh.colors[:, 0].numpy(), atol=0.5 / 255 + 1e-6)
    obj_v, obj_f = read_obj(tmp_path / "sphere.obj")
    np.testing.assert_allclose(obj_v[:, :3], mesh.vertices.numpy(), atol=1e-5)
    np.testing.assert_array_equal(obj_f, mesh.faces.numpy())
    assert not list(tmp_path.glob("*.tmp"))


def test_ray_and_z_depths_back_project_to_the_same_points() -> None:
    angle = torch.tensor(0.4)
    c2w = torch.eye(4)
    c2w[:3, :3] = torch.tensor(
        [[1.0, 0.0, 0.0], [0.0, angle.cos(), -angle.sin()], [0.0, angle.sin(), angle.cos()]]
    )
    c2w[:3, 3] = torch.tensor([0.3, -1.0, 2.0])
    one = torch.ones(1)
    cameras = Cameras(c2w[None], 30 * one, 25 * one, 16 * one, 12 * one, 32, 24)
    t = 2.0 + torch.rand(24, 32)
    along_ray = back_project(cameras, t, "ray")
    origins, directions = cameras.rays(0)
    torch.testing.assert_close(along_ray, origins + directions * t[..., None])
    camera_z = ((along_ray - c2w[:3, 3]) @ c2w[:3, :3])[..., 2]  # world -> camera frame
    torch.testing.assert_close(back_project(cameras, camera_z, "z"), along_ray)


def test_splat_run_has_no_mesh_but_a_point_cloud(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run = _train("splat", tmp_path / "outputs")
    with pytest.raises(SystemExit) as info:
        run_cli(export_cli.main, [str(run), "mesh"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: SplatModel has no density field" in err and "meshes need a density field" in err
    export_cli.main([str(run), "pointcloud", "--min-accumulation", "0.1", "--max-points", "300"])
    points, _ = read_points(run / "export" / "pointcloud.ply")
    assert points.shape == (300, 3) and torch.isfinite(points).all()


def test_wrong_run_dir_says_what_is_missing(
    tensorf_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.yaml").write_bytes((tensorf_run / "config.yaml").read_bytes())
    (tmp_path / "empty").mkdir()
    for run, message in (
        (tmp_path / "nowhere", "no such run directory"),
        (tmp_path / "empty", "missing config.yaml and checkpoints/last.pt"),
        (half, "not a tf-train run directory: missing checkpoints/last.pt"),
    ):
        with pytest.raises(SystemExit) as info:
            run_cli(export_cli.main, [str(run), "mesh"])
        assert info.value.code == 2
        err = capsys.readouterr().err
        assert f"error: {run}" in err and message in err and "Traceback" not in err


def test_help_comes_from_the_docstrings(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        export_cli.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for fragment in ("marching cubes", "--level", "renderer's units", "--max-points", "--format"):
        assert fragment in text
