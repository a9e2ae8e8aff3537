// Fused VM / CP factor interpolation on CUDA, forward and backward: the GPU twin of
// vm_interp.cpp (same conventions, see there) and of tensorfields/core/_torch_impl.py.
//
// One thread per output element (point, [pair,] channel). Factors are read channel-last
// (nodes, C) -- free when they come in channels_last memory format, as the Python wrapper
// passes them -- so the threads of one point read one contiguous row (coalesced) and write
// contiguous outputs. Backward scatters with atomicAdd (float and double, sm_60+) into
// channel-last gradients, returned as channels_last (1, C, H, W) tensors; no gradient for xyz.

#include "aten_headers.h"

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <vector>

#include "cuda_common.cuh"

namespace tf {
namespace {

struct Lerp {
  int64_t i0, i1;  // -1: node outside the grid (zero padding)
};

// Node position (x + 1) / 2 * (size - 1) -> the two nodes and their weights w0, w1.
template <typename scalar_t>
__device__ inline Lerp lerp_at(scalar_t x, int64_t size, scalar_t& w0, scalar_t& w1) {
  Lerp l{-1, -1};
  w0 = w1 = scalar_t(0);
  const scalar_t pos = (x + 1) / 2 * static_cast<scalar_t>(size - 1);
  if (!(pos > -1 && pos < static_cast<scalar_t>(size))) return l;  // NaN lands here too
  const scalar_t f = floor(pos);
  const int64_t i = static_cast<int64_t>(f);
  w1 = pos - f;
  w0 = (f + 1) - pos;
  if (i >= 0) l.i0 = i;
  if (i + 1 < size) l.i1 = i + 1;
  return l;
}

// Raw pointers to the three factors of one kind; passed by value to the kernels.
template <typename scalar_t>
struct Factors {
  scalar_t* data[3];
  int64_t rows[3], cols[3];
};

// cl: channel-last data; shape: the (1, C, rows, cols) factor it holds.
template <typename scalar_t>
Factors<scalar_t> factors_of(const std::vector<at::Tensor>& cl,
                             const std::vector<at::Tensor>& shape) {
  Factors<scalar_t> out;
  for (int i = 0; i < 3; ++i) {
    out.data[i] = cl[i].data_ptr<scalar_t>();
    out.rows[i] = shape[i].size(2);
    out.cols[i] = shape[i].size(3);
  }
  return out;
}

// PLANE_AXES = ((0, 1), (0, 2), (1, 2)) and LINE_AXES = (2, 1, 0), as functions of the pair i.
__device__ inline int plane_u(int64_t i) { return i == 2 ? 1 : 0; }
__device__ inline int plane_v(int64_t i) { return i == 0 ? 1 : 2; }
__device__ inline int line_axis(int64_t i) { return static_cast<int>(2 - i); }

// Channel c of a channel-last (rows * cols, C) factor at (v, u), corners in grid_sample's
// order; lines have cols == 1 and u == 0 (node 0, weight 1).
template <typename scalar_t>
__device__ inline scalar_t bilerp(const scalar_t* f, int64_t rows, int64_t cols, int64_t C,
                                  int64_t c, scalar_t x_u, scalar_t x_v) {
  scalar_t wu0, wu1, wv0, wv1;
  const Lerp u = lerp_at(x_u, cols, wu0, wu1);
  const Lerp v = lerp_at(x_v, rows, wv0, wv1);
  const scalar_t* fc = f + c;
  scalar_t acc = 0;
  if (v.i0 >= 0 && u.i0 >= 0) acc += wv0 * wu0 * fc[(v.i0 * cols + u.i0) * C];
  if (v.i0 >= 0 && u.i1 >= 0) acc += wv0 * wu1 * fc[(v.i0 * cols + u.i1) * C];
  if (v.i1 >= 0 && u.i0 >= 0) acc += wv1 * wu0 * fc[(v.i1 * cols + u.i0) * C];
  if (v.i1 >= 0 && u.i1 >= 0) acc += wv1 * wu1 * fc[(v.i1 * cols + u.i1) * C];
  return acc;
}

template <typename scalar_t>
__device__ inline void bilerp_scatter(scalar_t* f, int64_t rows, int64_t cols, int64_t C,
                                      int64_t c, scalar_t x_u, scalar_t x_v, scalar_t g) {
  scalar_t wu0, wu1, wv0, wv1;
  const Lerp u = lerp_at(x_u, cols, wu0, wu1);
  const Lerp v = lerp_at(x_v, rows, wv0, wv1);
  scalar_t* fc = f + c;
  if (v.i0 >= 0 && u.i0 >= 0) atomicAdd(fc + (v.i0 * cols + u.i0) * C, wv0 * wu0 * g);
  if (v.i0 >= 0 && u.i1 >= 0) atomicAdd(fc + (v.i0 * cols + u.i1) * C, wv0 * wu1 * g);
  if (v.i1 >= 0 && u.i0 >= 0) atomicAdd(fc + (v.i1 * cols + u.i0) * C, wv1 * wu0 * g);
  if (v.i1 >= 0 && u.i1 >= 0) atomicAdd(fc + (v.i1 * cols + u.i1) * C, wv1 * wu1 * g);
}

template <typename scalar_t>
__device__ inline scalar_t line_at(const Factors<scalar_t>& L, int64_t i, int64_t C, int64_t c,
                                   scalar_t x) {
  return bilerp(L.data[i], L.rows[i], int64_t(1), C, c, scalar_t(0), x);
}

template <typename scalar_t>
__global__ void vm_fwd_kernel(const scalar_t* __restrict__ xyz, int64_t n, int64_t C,
                              Factors<scalar_t> P, Factors<scalar_t> L,
                              scalar_t* __restrict__ out) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= n * 3 * C) return;
  const int64_t c = idx % C, i = (idx / C) % 3, k = idx / (3 * C);
  const scalar_t* p = xyz + 3 * k;
  const scalar_t xu = p[plane_u(i)], xv = p[plane_v(i)];
  const scalar_t pv = bilerp(P.data[i], P.rows[i], P.cols[i], C, c, xu, xv);
  out[idx] = pv * line_at(L, i, C, c, p[line_axis(i)]);
}

template <typename scalar_t>
__global__ void vm_bwd_kernel(const scalar_t* __restrict__ grad_out,
                              const scalar_t* __restrict__ xyz, int64_t n, int64_t C,
                              Factors<scalar_t> P, Factors<scalar_t> L, Factors<scalar_t> GP,
                              Factors<scalar_t> GL) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= n * 3 * C) return;
  const int64_t c = idx % C, i = (idx / C) % 3, k = idx / (3 * C);
  const scalar_t* p = xyz + 3 * k;
  const scalar_t g = grad_out[idx];
  const scalar_t xu = p[plane_u(i)], xv = p[plane_v(i)], xw = p[line_axis(i)];
  const scalar_t pv = bilerp(P.data[i], P.rows[i], P.cols[i], C, c, xu, xv);
  const scalar_t lv = line_at(L, i, C, c, xw);
  bilerp_scatter(GP.data[i], P.rows[i], P.cols[i], C, c, xu, xv, g * lv);
  bilerp_scatter(GL.data[i], L.rows[i], int64_t(1), C, c, scalar_t(0), xw, g * pv);
}

template <typename scalar_t>
__global__ void cp_fwd_kernel(const scalar_t* __restrict__ xyz, int64_t n, int64_t C,
                              Factors<scalar_t> L, scalar_t* __restrict__ out) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= n * C) return;
  const int64_t c = idx % C, k = idx / C;
  const scalar_t* p = xyz + 3 * k;
  out[idx] = line_at(L, 0, C, c, p[0]) * line_at(L, 1, C, c, p[1]) * line_at(L, 2, C, c, p[2]);
}

template <typename scalar_t>
__global__ void cp_bwd_kernel(const scalar_t* __restrict__ grad_out,
                              const scalar_t* __restrict__ xyz, int64_t n, int64_t C,
                              Factors<scalar_t> L, Factors<scalar_t> GL) {
  const int64_t idx = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= n * C) return;
  const int64_t c = idx % C, k = idx / C;
  const scalar_t* p = xyz + 3 * k;
  const scalar_t g = grad_out[idx];
  const scalar_t v[3] = {line_at(L, 0, C, c, p[0]), line_at(L, 1, C, c, p[1]),
                         line_at(L, 2, C, c, p[2])};
  for (int a = 0; a < 3; ++a) {
    const scalar_t others = v[(a + 1) % 3] * v[(a + 2) % 3];
    bilerp_scatter(GL.data[a], L.rows[a], int64_t(1), C, c, scalar_t(0), p[a], g * others);
  }
}


// (1, C, H, W) -> contiguous (H * W, C), a view when the factor is channels_last already.
std::vector<at::Tensor> channel_last(const std::vector<at::Tensor>& f) {
  std::vector<at::Tensor> out;
  for (const auto& t : f)
    out.push_back(t.permute({0, 2, 3, 1}).reshape({-1, t.size(1)}).contiguous());
  return out;
}

// Zeroed channel-last gradient buffers, one per factor.
std::vector<at::Tensor> zeros_like(const std::vector<at::Tensor>& cl) {
  std::vector<at::Tensor> out;
  for (const auto& t : cl) out.push_back(at::zeros_like(t));
  return out;
}

// A channel-last (H * W, C) gradient as a (1, C, H, W) tensor (channels_last strides, no copy).
std::vector<at::Tensor> shaped_like(const std::vector<at::Tensor>& grads,
                                    const std::vector<at::Tensor>& factors) {
  std::vector<at::Tensor> out;
  for (size_t i = 0; i < grads.size(); ++i) {
    const auto& f = factors[i];
    out.push_back(grads[i].view({1, f.size(2), f.size(3), f.size(1)}).permute({0, 3, 1, 2}));
  }
  return out;
}

}  // namespace

at::Tensor vm_interp_fwd_cuda(const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
                              const std::vector<at::Tensor>& lines, bool summed) {
  const c10::cuda::OptionalCUDAGuard guard(xyz.device());
  const int64_t n = xyz.size(0), C = planes[0].size(1);
  auto out = at::empty({n, 3, C}, xyz.options());  // every element is written
  if (n * C == 0) return summed ? at::zeros({n}, xyz.options()) : out;
  const auto pts = xyz.contiguous();
  const auto pc = channel_last(planes), lc = channel_last(lines);
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "vm_interp_fwd_cuda", [&] {
    vm_fwd_kernel<scalar_t><<<cuda_blocks(n * 3 * C), kCudaThreads, 0,
                              c10::cuda::getCurrentCUDAStream()>>>(
        pts.data_ptr<scalar_t>(), n, C, factors_of<scalar_t>(pc, planes),
        factors_of<scalar_t>(lc, lines), out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  // Summed mode (a density) composes with a sum here: GPU memory bandwidth makes the
  // (n, 3, C) intermediate cheap, unlike on CPU where vm_interp.cpp fuses it.
  return summed ? out.sum({1, 2}) : out;
}

std::vector<at::Tensor> vm_interp_bwd_cuda(const at::Tensor& grad_out, const at::Tensor& xyz,
                                           const std::vector<at::Tensor>& planes,
                                           const std::vector<at::Tensor>& lines) {
  const c10::cuda::OptionalCUDAGuard guard(xyz.device());
  const int64_t n = xyz.size(0), C = planes[0].size(1);
  const auto pc = channel_last(planes), lc = channel_last(lines);
  auto gp = zeros_like(pc), gl = zeros_like(lc);
  if (n * C > 0) {
    const auto pts = xyz.contiguous();
    // A summed forward's (n,) gradient is the same for every (pair, channel) of a point.
    const auto go = (grad_out.dim() == 1 ? grad_out.view({n, 1, 1}).expand({n, 3, C}) : grad_out)
                        .contiguous();
    AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "vm_interp_bwd_cuda", [&] {
      vm_bwd_kernel<scalar_t><<<cuda_blocks(n * 3 * C), kCudaThreads, 0,
                                c10::cuda::getCurrentCUDAStream()>>>(
          go.data_ptr<scalar_t>(), pts.data_ptr<scalar_t>(), n, C,
          factors_of<scalar_t>(pc, planes), factors_of<scalar_t>(lc, lines),
          factors_of<scalar_t>(gp, planes), factors_of<scalar_t>(gl, lines));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  auto grads = shaped_like(gp, planes);
  for (const auto& g : shaped_like(gl, lines)) grads.push_back(g);
  return grads;
}

at::Tensor cp_interp_fwd_cuda(const at::Tensor& xyz, const std::vector<at::Tensor>& lines) {
  const c10::cuda::OptionalCUDAGuard guard(xyz.device());
  const int64_t n = xyz.size(0), C = lines[0].size(1);
  auto out = at::empty({n, C}, xyz.options());  // every element is written
  if (n * C == 0) return out;
  const auto pts = xyz.contiguous();
  const auto lc = channel_last(lines);
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "cp_interp_fwd_cuda", [&] {
    cp_fwd_kernel<scalar_t><<<cuda_blocks(n * C), kCudaThreads, 0,
                              c10::cuda::getCurrentCUDAStream()>>>(
        pts.data_ptr<scalar_t>(), n, C, factors_of<scalar_t>(lc, lines),
        out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::vector<at::Tensor> cp_interp_bwd_cuda(const at::Tensor& grad_out, const at::Tensor& xyz,
                                           const std::vector<at::Tensor>& lines) {
  const c10::cuda::OptionalCUDAGuard guard(xyz.device());
  const int64_t n = xyz.size(0), C = lines[0].size(1);
  const auto lc = channel_last(lines);
  auto gl = zeros_like(lc);
  if (n * C > 0) {
    const auto pts = xyz.contiguous();
    const auto go = grad_out.contiguous();
    AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "cp_interp_bwd_cuda", [&] {
      cp_bwd_kernel<scalar_t><<<cuda_blocks(n * C), kCudaThreads, 0,
                                c10::cuda::getCurrentCUDAStream()>>>(
          go.data_ptr<scalar_t>(), pts.data_ptr<scalar_t>(), n, C,
          factors_of<scalar_t>(lc, lines), factors_of<scalar_t>(gl, lines));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  return shaped_like(gl, lines);
}

}  // namespace tf
