// Volume-rendering compositing on packed samples, CUDA: the GPU twin of composite.cpp (same
// formulas, early termination and backward, see there). One thread per ray; each ray's
// [start, end) comes from a pass over the sorted ray indices. Accumulation: one thread per ray
// forward (a fixed summation order, no atomics), one per sample backward.

#include "aten_headers.h"

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <vector>

#include "cuda_common.cuh"

namespace tf {
namespace {

// starts[r], ends[r]: the samples of ray r (both 0 for rays without samples).
__global__ void ray_bounds_kernel(const int64_t* ray, int64_t s, int64_t* starts, int64_t* ends) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= s) return;
  const int64_t r = ray[i];
  if (i == 0 || ray[i - 1] != r) starts[r] = i;
  if (i == s - 1 || ray[i + 1] != r) ends[r] = i + 1;
}

template <typename scalar_t>
struct Packed {
  const scalar_t *sigma, *t0, *t1;
  const int64_t *starts, *ends;
  int64_t n_rays;
};

template <typename scalar_t>
__global__ void fwd_kernel(Packed<scalar_t> in, scalar_t threshold, scalar_t* w, scalar_t* T) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= in.n_rays) return;
  double depth = 0;
  int64_t i = in.starts[r];
  const int64_t end = in.ends[r];
  for (; i < end; ++i) {
    const scalar_t trans = static_cast<scalar_t>(exp(-depth));
    if (trans < threshold) break;
    const scalar_t o = in.sigma[i] * (in.t1[i] - in.t0[i]);
    T[i] = trans;
    w[i] = trans * (scalar_t(1) - exp(-o));
    depth += static_cast<double>(o);
  }
  for (; i < end; ++i) w[i] = T[i] = 0;
}

template <typename scalar_t>
__global__ void bwd_kernel(Packed<scalar_t> in, const scalar_t* g, const scalar_t* h,
                           const scalar_t* w, const scalar_t* T, scalar_t* grad) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= in.n_rays) return;
  double behind = 0;
  for (int64_t i = in.ends[r] - 1; i >= in.starts[r]; --i) {
    if (T[i] == 0 && w[i] == 0) {
      grad[i] = 0;
      continue;
    }
    const scalar_t dt = in.t1[i] - in.t0[i];
    const scalar_t keep = exp(-in.sigma[i] * dt);
    const double d_o = static_cast<double>(g[i]) * T[i] * keep - behind;
    grad[i] = static_cast<scalar_t>(d_o) * dt;
    behind += static_cast<double>(g[i]) * w[i] + static_cast<double>(h[i]) * T[i];
  }
}

template <typename scalar_t>
__global__ void accumulate_kernel(const scalar_t* w, const scalar_t* v, const int64_t* starts,
                                  const int64_t* ends, int64_t n_rays, int64_t C,
                                  scalar_t* out) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= n_rays) return;
  for (int64_t c = 0; c < C; ++c) {
    scalar_t acc = 0;
    for (int64_t i = starts[r]; i < ends[r]; ++i) acc += w[i] * (v ? v[i * C + c] : scalar_t(1));
    out[r * C + c] = acc;
  }
}

template <typename scalar_t>
__global__ void accumulate_bwd_kernel(const scalar_t* g, const scalar_t* w, const scalar_t* v,
                                      const int64_t* ray, int64_t s, int64_t C,
                                      scalar_t* grad_w, scalar_t* grad_v) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= s) return;
  const scalar_t* gr = g + ray[i] * C;
  scalar_t dot = 0;
  for (int64_t c = 0; c < C; ++c) {
    dot += gr[c] * (v ? v[i * C + c] : scalar_t(1));
    if (grad_v) grad_v[i * C + c] = w[i] * gr[c];
  }
  grad_w[i] = dot;
}

std::vector<at::Tensor> ray_bounds(const at::Tensor& ray_indices, int64_t n_rays) {
  const int64_t s = ray_indices.numel();
  auto starts = at::zeros({n_rays}, ray_indices.options());
  auto ends = at::zeros({n_rays}, ray_indices.options());
  if (s > 0 && n_rays > 0) {
    ray_bounds_kernel<<<cuda_blocks(s), kCudaThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        ray_indices.data_ptr<int64_t>(), s, starts.data_ptr<int64_t>(), ends.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return {starts, ends};
}

}  // namespace

std::vector<at::Tensor> render_transmittance_fwd_cuda(const at::Tensor& sigmas,
                                                      const at::Tensor& t_starts,
                                                      const at::Tensor& t_ends,
                                                      const at::Tensor& ray_indices,
                                                      int64_t n_rays, double eps) {
  const c10::cuda::OptionalCUDAGuard guard(sigmas.device());
  auto w = at::empty_like(sigmas), T = at::empty_like(sigmas);
  if (sigmas.numel() == 0 || n_rays == 0) return {w, T};
  const auto bounds = ray_bounds(ray_indices, n_rays);
  AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "render_transmittance_fwd_cuda", [&] {
    const Packed<scalar_t> in{sigmas.data_ptr<scalar_t>(),   t_starts.data_ptr<scalar_t>(),
                              t_ends.data_ptr<scalar_t>(),   bounds[0].data_ptr<int64_t>(),
                              bounds[1].data_ptr<int64_t>(), n_rays};
    fwd_kernel<scalar_t><<<cuda_blocks(n_rays), kCudaThreads, 0,
                           c10::cuda::getCurrentCUDAStream()>>>(
        in, static_cast<scalar_t>(eps), w.data_ptr<scalar_t>(), T.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {w, T};
}

at::Tensor render_transmittance_bwd_cuda(const at::Tensor& grad_weights,
                                         const at::Tensor& grad_transmittance,
                                         const at::Tensor& sigmas, const at::Tensor& t_starts,
                                         const at::Tensor& t_ends, const at::Tensor& ray_indices,
                                         const at::Tensor& weights,
                                         const at::Tensor& transmittance, int64_t n_rays) {
  const c10::cuda::OptionalCUDAGuard guard(sigmas.device());
  auto grad = at::zeros_like(sigmas);
  if (sigmas.numel() == 0 || n_rays == 0) return grad;
  const auto bounds = ray_bounds(ray_indices, n_rays);
  AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "render_transmittance_bwd_cuda", [&] {
    const Packed<scalar_t> in{sigmas.data_ptr<scalar_t>(),   t_starts.data_ptr<scalar_t>(),
                              t_ends.data_ptr<scalar_t>(),   bounds[0].data_ptr<int64_t>(),
                              bounds[1].data_ptr<int64_t>(), n_rays};
    bwd_kernel<scalar_t><<<cuda_blocks(n_rays), kCudaThreads, 0,
                           c10::cuda::getCurrentCUDAStream()>>>(
        in, grad_weights.data_ptr<scalar_t>(), grad_transmittance.data_ptr<scalar_t>(),
        weights.data_ptr<scalar_t>(), transmittance.data_ptr<scalar_t>(),
        grad.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad;
}

at::Tensor accumulate_along_rays_fwd_cuda(const at::Tensor& weights, const at::Tensor& values,
                                          const at::Tensor& ray_indices, int64_t n_rays) {
  const c10::cuda::OptionalCUDAGuard guard(weights.device());
  const bool has_values = values.dim() == 2;  // else a 1-D placeholder: weights alone
  const int64_t s = weights.numel(), C = has_values ? values.size(1) : 1;
  auto out = at::zeros({n_rays, C}, weights.options());
  if (s == 0 || n_rays == 0) return out;
  const auto bounds = ray_bounds(ray_indices, n_rays);
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "accumulate_along_rays_fwd_cuda", [&] {
    accumulate_kernel<scalar_t><<<cuda_blocks(n_rays), kCudaThreads, 0,
                                  c10::cuda::getCurrentCUDAStream()>>>(
        weights.data_ptr<scalar_t>(), has_values ? values.data_ptr<scalar_t>() : nullptr,
        bounds[0].data_ptr<int64_t>(), bounds[1].data_ptr<int64_t>(), n_rays, C,
        out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

std::vector<at::Tensor> accumulate_along_rays_bwd_cuda(const at::Tensor& grad_out,
                                                       const at::Tensor& weights,
                                                       const at::Tensor& values,
                                                       const at::Tensor& ray_indices) {
  const c10::cuda::OptionalCUDAGuard guard(weights.device());
  const int64_t s = weights.numel(), C = grad_out.size(1);
  auto grad_w = at::empty_like(weights);
  const bool has_values = values.dim() == 2;
  auto grad_v = has_values ? at::empty_like(values) : at::empty({0}, values.options());
  if (s == 0) return {grad_w, grad_v};
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "accumulate_along_rays_bwd_cuda", [&] {
    accumulate_bwd_kernel<scalar_t><<<cuda_blocks(s), kCudaThreads, 0,
                                      c10::cuda::getCurrentCUDAStream()>>>(
        grad_out.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
        has_values ? values.data_ptr<scalar_t>() : nullptr,
        ray_indices.data_ptr<int64_t>(), s, C, grad_w.data_ptr<scalar_t>(),
        has_values ? grad_v.data_ptr<scalar_t>() : nullptr);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {grad_w, grad_v};
}

}  // namespace tf
