"""PLY vertex tables (ASCII or binary): point clouds (Strivec's --init-points, splat init) and
the 3DGS Gaussian layout (gaussian_ply.py) read through one parser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from tensorfields.data.errors import DataError

_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip


def read_ply_vertices(path: Path) -> dict[str, np.ndarray]:
    """Every scalar vertex property by name, in file order. Clear errors for files that are not
    PLY, use list properties on vertices, or are cut short."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read point cloud: {exc}") from exc
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        raise DataError(path, "not a PLY file (no 'ply' magic / 'end_header')")
    body = raw[raw.index(b"\n", end) + 1 :]
    fmt, count, props, element = None, 0, [], None
    for line in raw[:end].decode("ascii", errors="replace").splitlines()[1:]:
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            fmt = words[1]
        elif words[0] == "element":
            element = words[1]
            if element == "vertex":
                count = int(words[2])
            elif count == 0:
                raise DataError(path, f"element {element!r} before the vertices")
        elif words[0] == "property" and element == "vertex":
            if words[1] == "list":
                raise DataError(path, f"list property {words[-1]!r} on vertices")
            if words[1] not in _TYPES:
                raise DataError(path, f"unknown property type {words[1]!r}")
            props.append((words[2], _TYPES[words[1]]))
    names = [name for name, _ in props]
    try:
        if fmt == "ascii":
            table = np.loadtxt(body.decode("ascii").splitlines()[:count], ndmin=2)
            if count and table.shape[1] != len(names):
                raise ValueError(f"rows have {table.shape[1]} values, the header {len(names)}")
            columns = {name: table[:, i] for i, name in enumerate(names)}
        elif fmt in ("binary_little_endian", "binary_big_endian"):
            order = "<" if fmt == "binary_little_endian" else ">"
            dtype = np.dtype([(name, order + code) for name, code in props])
            vertices = np.frombuffer(body, dtype=dtype, count=count)
            columns = {name: vertices[name] for name in names}
        else:
            raise DataError(path, f"unknown PLY format {fmt!r}")
    except ValueError as exc:
        raise DataError(path, f"vertex data is cut short or malformed: {exc}") from exc
    found = len(next(iter(columns.values()))) if columns else 0
    if found != count:
        raise DataError(path, f"header says {count} vertices, found {found}")
    return columns


def vertex_positions(columns: dict[str, np.ndarray], path: Path) -> np.ndarray:
    """The ``(n, 3)`` x, y, z columns of a vertex table read from ``path``."""
    if not {"x", "y", "z"} <= set(columns):
        raise DataError(Path(path), f"vertices need x, y and z properties, found {list(columns)}")
    return np.stack([columns[a] for a in "xyz"], axis=1)


def read_ply_points(path: Path) -> Float[Tensor, "n 3"]:
    """The x, y, z of every vertex (other properties are skipped)."""
    xyz = vertex_positions(read_ply_vertices(path), path)
    return torch.from_numpy(np.ascontiguousarray(xyz, dtype=np.float32))


def write_ply_vertices(
    path: Path, columns: dict[str, np.ndarray], faces: np.ndarray | None = None
) -> None:
    """Write vertex properties as binary little-endian PLY, atomically (temp + rename).

    uint8 columns are written as ``uchar`` (colours, as point cloud and mesh viewers expect
    them), every other column as float32. ``faces`` (f, 3) vertex indices make a mesh: an
    ``element face`` with ``property list uchar int vertex_indices`` follows the vertices.
    """
    path = Path(path)
    count = len(next(iter(columns.values())))
    types = {
        name: "u1" if np.asarray(v).dtype == np.uint8 else "<f4" for name, v in columns.items()
    }
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {count}"]
    header += [f"property {'uchar' if t == 'u1' else 'float'} {n}" for n, t in types.items()]
    if faces is not None:
        header += [f"element face {len(faces)}", "property list uchar int vertex_indices"]
    header.append("end_header")
    table = np.empty(count, dtype=list(types.items()))
    for name, values in columns.items():
        table[name] = values
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    with open(temp, "wb") as f:
        f.write(("\n".join(header) + "\n").encode("ascii"))
        f.write(table.tobytes())
        if faces is not None:
            rows = np.empty(len(faces), dtype=[("n", "u1"), ("v", "<i4", (3,))])
            rows["n"], rows["v"] = 3, faces
            f.write(rows.tobytes())
    temp.replace(path)
