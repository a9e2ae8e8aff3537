// Strivec's local CP tri-vector lookups on CUDA: the GPU twin of local_cp.cpp (see there).
// One thread per (point, component); the backward scatters with atomicAdd.

#include "aten_headers.h"

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "cuda_common.cuh"
#include "local_cp_job.h"

namespace tf {
namespace {

template <typename scalar_t>
__global__ void mix_forward_kernel(const LocalCP<scalar_t> job, scalar_t* out) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= job.n * job.r) return;
  const int64_t i = t / job.r, r = t % job.r;
  scalar_t sum = 0;
  for (int64_t k = 0; k < job.k; ++k) {
    Corner<scalar_t> c;
    if (!job.corner(i, k, c)) continue;
    scalar_t v = c.w;
    for (int a = 0; a < 3; ++a) v *= c.lo[a][r] + c.frac[a] * (c.hi[a][r] - c.lo[a][r]);
    sum += v;
  }
  out[t] = sum;
}

template <typename scalar_t>
__global__ void mix_backward_kernel(const LocalCP<scalar_t> job, const scalar_t* grad_out,
                                    scalar_t* grad) {
  const int64_t t = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (t >= job.n * job.r) return;
  const int64_t i = t / job.r, r = t % job.r;
  const int64_t node_stride = job.r, cube_stride = job.l * job.r;
  const int64_t axis_stride = job.m * cube_stride;
  for (int64_t k = 0; k < job.k; ++k) {
    Corner<scalar_t> c;
    if (!job.corner(i, k, c)) continue;
    const scalar_t g = grad_out[t] * c.w;
    scalar_t v[3];
    for (int a = 0; a < 3; ++a) v[a] = c.lo[a][r] + c.frac[a] * (c.hi[a][r] - c.lo[a][r]);
    for (int a = 0; a < 3; ++a) {
      const scalar_t others = v[(a + 1) % 3] * v[(a + 2) % 3] * g;
      scalar_t* base = grad + a * axis_stride + c.id * cube_stride + c.node[a] * node_stride;
      atomicAdd(base + r, others * (1 - c.frac[a]));
      atomicAdd(base + node_stride + r, others * c.frac[a]);
    }
  }
}

}  // namespace

// summed: the per-point sums of the (n, r) products (a reduction after the kernel).
at::Tensor local_cp_mix_fwd_cuda(const at::Tensor& xyz, const at::Tensor& ids,
                                 const at::Tensor& weights, const at::Tensor& centres,
                                 double half_extent, const at::Tensor& lines, bool summed) {
  const at::cuda::CUDAGuard guard(xyz.device());
  auto out = at::empty({xyz.size(0), lines.size(3)}, xyz.options());
  const int64_t count = out.numel();
  if (count == 0) return summed ? at::zeros({xyz.size(0)}, xyz.options()) : out;
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "local_cp_mix_fwd_cuda", [&] {
    const auto job = LocalCP<scalar_t>::of(xyz, ids, weights, centres, half_extent, lines);
    mix_forward_kernel<scalar_t>
        <<<cuda_blocks(count), kCudaThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
            job, out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return summed ? out.sum(1) : out;
}

at::Tensor local_cp_mix_bwd_cuda(const at::Tensor& grad_out, const at::Tensor& xyz,
                                 const at::Tensor& ids, const at::Tensor& weights,
                                 const at::Tensor& centres, double half_extent,
                                 const at::Tensor& lines) {
  const at::cuda::CUDAGuard guard(xyz.device());
  if (grad_out.dim() == 1)  // summed: the same gradient for every component of a point
    return local_cp_mix_bwd_cuda(grad_out.unsqueeze(1).expand({-1, lines.size(3)}).contiguous(),
                                 xyz, ids, weights, centres, half_extent, lines);
  auto grad = at::zeros_like(lines);
  const int64_t count = grad_out.numel();
  if (count == 0) return grad;
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "local_cp_mix_bwd_cuda", [&] {
    const auto job = LocalCP<scalar_t>::of(xyz, ids, weights, centres, half_extent, lines);
    mix_backward_kernel<scalar_t>
        <<<cuda_blocks(count), kCudaThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
            job, grad_out.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad;
}

}  // namespace tf
