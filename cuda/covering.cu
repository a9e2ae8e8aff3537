// Strivec's covering-cube lookup on CUDA: the GPU twin of covering.cpp, one thread a point.

#include "aten_headers.h"

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <vector>

#include "covering_job.h"
#include "cuda_common.cuh"

namespace tf {
namespace {

template <typename scalar_t>
__global__ void covering_kernel(const Covering<scalar_t> job, int64_t* ids, scalar_t* weights) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < job.n) job.lookup(i, ids, weights);
}

}  // namespace

std::vector<at::Tensor> covering_tensors_cuda(const at::Tensor& xyz, const at::Tensor& centres,
                                              double half_extent, const at::Tensor& aabb,
                                              at::IntArrayRef resolution,
                                              const at::Tensor& cell_slot,
                                              const at::Tensor& table, int64_t k, double eps) {
  const at::cuda::CUDAGuard guard(xyz.device());
  const int64_t n = xyz.size(0);
  auto ids = at::empty({n, k}, xyz.options().dtype(at::kLong));
  auto weights = at::empty({n, k}, xyz.options());
  if (n == 0) return {ids, weights};
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "covering_tensors_cuda", [&] {
    const auto job = Covering<scalar_t>::of(xyz, centres, half_extent, aabb, resolution,
                                             cell_slot, table, k, eps);
    covering_kernel<scalar_t><<<cuda_blocks(n), kCudaThreads, 0,
                                at::cuda::getCurrentCUDAStream()>>>(
        job, ids.data_ptr<int64_t>(), weights.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {ids, weights};
}

}  // namespace tf
