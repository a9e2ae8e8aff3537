"""Fused VM / CP lookups: the native extension against the PyTorch reference, and its loader."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from tensorfields.core import native
from tensorfields.core._torch_impl import (
    cp_interp_torch,
    vm_interp_summed_torch,
    vm_interp_torch,
    vm_project_torch,
)
from tensorfields.core.interp import (
    LINE_AXES,
    PLANE_AXES,
    _CPInterp,
    _VMInterp,
    _VMInterpSummed,
    _VMProject,
    cp_interp,
    vm_interp,
    vm_interp_summed,
    vm_project,
)


@pytest.fixture(scope="module")
def ops(native_module):
    """The built extension (see the ``native_module`` fixture)."""
    return native_module


@pytest.fixture(autouse=True)
def _auto_backend(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TF_BACKEND", raising=False)


def _factors(res, components, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    planes = [
        torch.randn(1, components, res[b], res[a], generator=g, dtype=dtype).requires_grad_()
        for a, b in PLANE_AXES
    ]
    lines = [
        torch.randn(1, components, res[c], 1, generator=g, dtype=dtype).requires_grad_()
        for c in LINE_AXES
    ]
    return planes, lines


def _points(n: int, res, dtype=torch.float32, seed=1) -> torch.Tensor:
    """Random points in and around the box, then the hard cases: exact grid nodes, the box
    faces and corners, just outside, and far outside."""
    g = torch.Generator().manual_seed(seed)
    xyz = (torch.rand(n, 3, generator=g, dtype=dtype) * 2.6 - 1.3).tolist()
    xyz += [[-1, -1, -1], [1, 1, 1], [1, -1, 1], [-1, 1, 0], [0, 0, 0]]
    xyz += [[1.0001, 0.2, -0.3], [-1.0001, 1, 0.5], [5, 0, 0], [0.1, -7, 3], [2, 2, 2]]
    nodes = [-1 + 2 * (r // 2) / max(r - 1, 1) for r in res]  # an interior grid node per axis
    xyz += [[nodes[0], nodes[1], nodes[2]], [-nodes[1], nodes[2] * 0.5, -nodes[0]]]
    return torch.tensor(xyz, dtype=dtype)


CASES = [
    ((7, 5, 3), 1),
    ((7, 5, 3), 4),
    ((16, 9, 12), 16),
    ((1, 4, 6), 3),  # a one-node axis
    ((33, 20, 27), 48),
]


def _assert_grads_close(ref, nat, atol=1e-4):
    for i, (a, b) in enumerate(zip(ref, nat, strict=True)):
        scale = max(1.0, a.abs().max().item())
        assert (a - b).abs().max().item() <= atol * scale, f"gradient of factor {i}"


def _assert_matches(ref, nat, factors, rtol=0.0):
    """Same output (atol 1e-5) and same gradients of every factor for one upstream gradient."""
    torch.testing.assert_close(nat, ref, atol=1e-5, rtol=rtol)
    grad = torch.randn_like(ref)
    _assert_grads_close(
        torch.autograd.grad(ref, factors, grad), torch.autograd.grad(nat, factors, grad)
    )


@pytest.mark.parametrize(("res", "components"), CASES)
def test_vm_native_matches_reference(ops, res, components):
    planes, lines = _factors(res, components)
    xyz = _points(200, res)
    ref = vm_interp_torch(xyz, planes, lines)
    nat = _VMInterp.apply(ops, xyz, *planes, *lines)
    assert nat.shape == (xyz.shape[0], 3, components)
    _assert_matches(ref, nat, [*planes, *lines])


@pytest.mark.parametrize(("res", "components"), CASES)
def test_vm_summed_native_matches_reference(ops, res, components):
    """The fused density mode, computed, and reused from a no-grad pass (backward only)."""
    planes, lines = _factors(res, components)
    xyz = _points(200, res)
    ref = vm_interp_summed_torch(xyz, planes, lines)
    nat = _VMInterpSummed.apply(ops, xyz, None, *planes, *lines)
    assert nat.shape == (xyz.shape[0],)
    _assert_matches(ref, nat, [*planes, *lines])
    with torch.no_grad():
        value = vm_interp_summed(xyz, planes, lines)
    reused = vm_interp_summed(xyz, planes, lines, value)
    assert type(reused.grad_fn).__name__.startswith("_VMInterpSummed")
    _assert_matches(vm_interp_summed_torch(xyz, planes, lines), reused, [*planes, *lines])


def _basis(components: int, width: int = 27, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    return torch.randn(width, 3 * components, generator=g, dtype=dtype).requires_grad_()


@pytest.mark.parametrize(("res", "components"), CASES)
@pytest.mark.parametrize("width", [1, 27, 40])
def test_vm_project_native_matches_reference(ops, res, components, width):
    """The fused appearance feature: outputs and the gradients of the factors and the basis."""
    planes, lines = _factors(res, components)
    basis = _basis(components, width)
    xyz = _points(200, res)
    ref = vm_project_torch(xyz, planes, lines, basis)
    nat = _VMProject.apply(ops, xyz, basis, *planes, *lines)
    assert nat.shape == (xyz.shape[0], width)
    # Sums of 3C products in another order (and fused multiply-adds, as BLAS uses).
    _assert_matches(ref, nat, [*planes, *lines, basis], rtol=1e-5)


def test_vm_project_routes_and_checks_the_basis(ops):
    planes, lines = _factors((6, 5, 4), 3)
    xyz = torch.rand(50, 3) * 2 - 1
    basis = _basis(3, 5)
    assert type(vm_project(xyz, planes, lines, basis).grad_fn).__name__ == "_VMProjectBackward"
    with pytest.raises(ValueError, match=r"basis must be \(F, 9\)"):
        vm_project(xyz, planes, lines, torch.randn(5, 8))
    with pytest.raises(RuntimeError, match=r"basis must be"):
        ops.vm_project_fwd(xyz, planes, lines, torch.randn(5, 8))
    with pytest.raises(RuntimeError, match=r"grad_out must be"):
        ops.vm_project_bwd(torch.zeros(50, 4), xyz, planes, lines, basis.detach())


@pytest.mark.parametrize(("res", "components"), CASES)
def test_cp_native_matches_reference(ops, res, components):
    lines = [torch.randn(1, components, r, 1).requires_grad_() for r in res]
    xyz = _points(200, res)
    ref = cp_interp_torch(xyz, lines)
    nat = _CPInterp.apply(ops, xyz, *lines)
    _assert_matches(ref, nat, lines)


@pytest.mark.parametrize("components", [2, 8])
def test_several_threads_reduce_their_gradients(ops, components):
    """The session runs one thread; the per-thread gradient buffers need at least two (and
    ``kPointsPerThread`` = 512 points per thread). Also the summed mode, and fewer channels
    than threads."""
    planes, lines = _factors((20, 11, 14), components)
    xyz = _points(3000, (20, 11, 14))
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        ref = vm_interp_torch(xyz, planes, lines)
        nat = _VMInterp.apply(ops, xyz, *planes, *lines)
        grad = torch.randn_like(ref)
        nat_grads = torch.autograd.grad(nat, [*planes, *lines], grad)
        cp_nat = torch.autograd.grad(_CPInterp.apply(ops, xyz, *lines).sum(), lines)
        basis = _basis(components, 11)
        proj = _VMProject.apply(ops, xyz, basis, *planes, *lines)
        proj_grad = torch.randn_like(proj)
        proj_grads = torch.autograd.grad(proj, [*planes, *lines, basis], proj_grad)
        summed = _VMInterpSummed.apply(ops, xyz, None, *planes, *lines)
        summed_grad = torch.randn_like(summed)
        summed_grads = torch.autograd.grad(summed, [*planes, *lines], summed_grad)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(nat, ref, atol=1e-5, rtol=0)
    _assert_grads_close(torch.autograd.grad(ref, [*planes, *lines], grad), nat_grads)
    _assert_grads_close(torch.autograd.grad(cp_interp_torch(xyz, lines).sum(), lines), cp_nat)
    summed_ref = vm_interp_summed_torch(xyz, planes, lines)
    _assert_grads_close(
        torch.autograd.grad(summed_ref, [*planes, *lines], summed_grad), summed_grads
    )
    proj_ref = vm_project_torch(xyz, planes, lines, basis)
    torch.testing.assert_close(proj, proj_ref, atol=1e-4, rtol=0)
    _assert_grads_close(
        torch.autograd.grad(proj_ref, [*planes, *lines, basis], proj_grad), proj_grads
    )


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_batches(ops, n):
    res = (6, 5, 4)
    planes, lines = _factors(res, 3)
    xyz = torch.rand(n, 3) * 2 - 1
    basis = _basis(3, 4)
    for ref, nat, factors in (
        (vm_interp_torch(xyz, planes, lines), vm_interp(xyz, planes, lines), planes + lines),
        (cp_interp_torch(xyz, lines), cp_interp(xyz, lines), lines),
        (
            vm_project_torch(xyz, planes, lines, basis),
            vm_project(xyz, planes, lines, basis),
            [*planes, *lines, basis],
        ),
    ):
        assert type(nat.grad_fn).__name__.startswith(("_VMInterp", "_CPInterp", "_VMProject"))
        _assert_matches(ref, nat, factors)


def test_gradcheck_float64(ops):
    res = (4, 3, 5)
    planes, lines = _factors(res, 2, dtype=torch.float64)
    xyz = _points(6, res, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda *f: _VMInterp.apply(ops, xyz, *f), (*planes, *lines), eps=1e-6, atol=1e-6
    )
    assert torch.autograd.gradcheck(
        lambda *f: _CPInterp.apply(ops, xyz, *f), tuple(lines), eps=1e-6, atol=1e-6
    )
    basis = _basis(2, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda b, *f: _VMProject.apply(ops, xyz, b, *f),
        (basis, *planes, *lines),
        eps=1e-6,
        atol=1e-6,
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: GPU tests are owed")
@pytest.mark.parametrize(("res", "components"), CASES)
def test_cuda_matches_reference(ops, res, components):
    if not ops.with_cuda:
        pytest.fail("a GPU is present but the native extension was built without CUDA")
    planes, lines = _factors(res, components)
    factors = [f.detach().to("cuda").requires_grad_() for f in planes + lines]
    xyz = _points(200, res).to("cuda")
    for ref_fn, op, used in (
        (vm_interp_torch, _VMInterp, factors),
        (cp_interp_torch, _CPInterp, factors[3:]),
    ):
        split = (used[:3], used[3:]) if op is _VMInterp else (used,)
        ref = ref_fn(xyz, *split)
        nat = op.apply(ops, xyz, *used)
        _assert_matches(ref, nat, used)
    basis = _basis(components).detach().to("cuda").requires_grad_()
    ref = vm_project_torch(xyz, factors[:3], factors[3:], basis)
    nat = vm_project(xyz, factors[:3], factors[3:], basis)  # native lookups, then cuBLAS
    _assert_matches(ref, nat, [*factors, basis], rtol=1e-5)


def test_bad_shapes_raise_clearly(ops):
    planes, lines = _factors((5, 4, 3), 2)
    lines[1] = torch.randn(1, 3, 4, 1)
    with pytest.raises(RuntimeError, match=r"lines must be \(1, C, L, 1\)"):
        ops.vm_interp_fwd(torch.zeros(2, 3), planes, lines)
    with pytest.raises(RuntimeError, match=r"xyz must be \(n, 3\)"):
        ops.cp_interp_fwd(torch.zeros(2, 2), lines)


def test_dispatch_uses_native_unless_xyz_needs_grad(ops):
    planes, lines = _factors((5, 4, 3), 2)
    xyz = torch.rand(10, 3) * 2 - 1
    assert native.native_available()
    assert type(vm_interp(xyz, planes, lines).grad_fn).__name__ == "_VMInterpBackward"
    # The native backward has no xyz gradient, so such calls take the reference.
    xyz.requires_grad_()
    out = cp_interp(xyz, lines)
    assert "_CPInterp" not in type(out.grad_fn).__name__
    (grad,) = torch.autograd.grad(out.sum(), xyz)
    assert grad.abs().sum() > 0


def test_vm_and_cp_modules_route_through_interp(ops):
    from tensorfields.representations.cp import CP
    from tensorfields.representations.vm import VM

    xyz = torch.rand(50, 3) * 2 - 1
    vm, cp = VM(4, (6, 5, 7)), CP(3, (6, 5, 7))
    torch.testing.assert_close(
        vm(xyz), vm_interp_torch(xyz, vm.planes, vm.lines), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(cp(xyz), cp_interp_torch(xyz, cp.lines), atol=1e-5, rtol=0)


def test_backend_torch_forces_reference(monkeypatch: pytest.MonkeyPatch):
    class NeverBuild(native.NativeLoader):
        def get(self):
            raise AssertionError("TF_BACKEND=torch must not build")

    monkeypatch.setenv("TF_BACKEND", "torch")
    monkeypatch.setattr(native, "_LOADER", NeverBuild())
    assert native.native_ops(torch.device("cpu")) is None
    assert not native.native_available()
    planes, lines = _factors((5, 4, 3), 2)
    out = vm_interp(torch.rand(8, 3) * 2 - 1, planes, lines)
    assert "_VMInterp" not in type(out.grad_fn).__name__


def test_backend_value_is_checked(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TF_BACKEND", "cuda")
    with pytest.raises(ValueError, match="TF_BACKEND must be one of torch, native"):
        native.backend()


def test_failed_build_reports_once_and_falls_back(
    tmp_path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    broken = tmp_path / "broken.cpp"
    broken.write_text("#error deliberately broken\n")
    loader = native.NativeLoader(
        name="tensorfields_native_broken",
        sources=[broken],
        build_dir=tmp_path / "build",
        with_cuda=False,
    )
    monkeypatch.setattr(native, "_LOADER", loader)
    planes, lines = _factors((5, 4, 3), 2)
    xyz = torch.rand(8, 3) * 2 - 1
    for _ in range(2):  # the failure is remembered: no second build, no second message
        out = vm_interp(xyz, planes, lines)
        torch.testing.assert_close(out, vm_interp_torch(xyz, planes, lines))
    assert loader.get() is None
    assert "deliberately broken" in (loader.error or "")
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("tensorfields: native ops unavailable (")
    assert err[0].endswith("); using the PyTorch reference")
    monkeypatch.setenv("TF_BACKEND", "native")
    with pytest.raises(RuntimeError, match="TF_BACKEND=native but native ops are unavailable"):
        vm_interp(xyz, planes, lines)


def test_import_does_not_build():
    code = (
        "import sys, tensorfields.core.interp, tensorfields.representations.vm;"
        "print('tensorfields_native' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip() == "False"


def test_failed_cuda_build_falls_back_to_the_cpu_ops(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    built = []

    class CudaBreaks(native.NativeLoader):
        def _build(self, with_cuda: bool):
            built.append(with_cuda)
            if with_cuda:
                raise RuntimeError("nvcc fatal: unsupported gpu architecture")
            return sys  # any module stands in for the CPU extension

    monkeypatch.setattr(native, "_with_cuda", lambda: True)
    loader = CudaBreaks()
    assert loader.get() is sys and built == [True, False]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA native ops unavailable" in err[0] and "nvcc fatal" in err[0]
    forced = CudaBreaks(with_cuda=True)  # CUDA asked for explicitly: no silent CPU build
    assert forced.get() is None and "nvcc fatal" in (forced.error or "")


def test_stale_build_lock_is_removed(tmp_path):
    """A killed build leaves ``lock``; torch's builder would wait for it forever."""
    lock = tmp_path / "lock"
    lock.write_text("")
    native._clear_stale_lock(tmp_path)
    assert lock.exists()  # fresh: another process may be building right now
    old = time.time() - native.STALE_LOCK_SECONDS - 60
    os.utime(lock, (old, old))
    native._clear_stale_lock(tmp_path)
    assert not lock.exists()


def test_build_folder_is_keyed_by_the_host_cpu(monkeypatch: pytest.MonkeyPatch, tmp_path):
    # The C++ is compiled with -march=native: a cache shared by two machines must not hand one
    # the other's binary.
    monkeypatch.setenv("TF_CACHE_DIR", str(tmp_path))
    folder = native._default_build_dir("cpu")
    assert folder.parent == tmp_path / "native" / torch.__version__
    assert folder.name == f"cpu-{native.host_cpu_tag()}"
    monkeypatch.setattr(native, "open", _no_cpuinfo, raising=False)
    assert native._default_build_dir("cpu") != folder


def _no_cpuinfo(*args, **kwargs):
    raise OSError("no /proc/cpuinfo here")
