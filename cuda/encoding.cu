// TensoRF's shading-MLP input on CUDA: the GPU twin of encoding.cpp, one thread a row.

#include "aten_headers.h"

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "cuda_common.cuh"
#include "encoding_job.h"

namespace tf {
namespace {

template <typename scalar_t>
__global__ void encode_kernel(const scalar_t* f, const scalar_t* d, EncodingShape shape,
                              int64_t n, scalar_t* out) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) encode_row(f + i * shape.F, d + i * 3, shape, out + i * shape.D);
}

template <typename scalar_t>
__global__ void encode_grad_kernel(const scalar_t* grad_out, const scalar_t* out,
                                   EncodingShape shape, int64_t n, scalar_t* grad) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) encode_row_grad(grad_out + i * shape.D, out + i * shape.D, shape, grad + i * shape.F);
}

}  // namespace

at::Tensor shading_input_fwd_cuda(const at::Tensor& features, const at::Tensor& dirs,
                                  int64_t feature_pe, int64_t view_pe, bool bfloat16) {
  TORCH_CHECK(!bfloat16, "a bfloat16 shading input is CPU only (cast the float32 one on CUDA)");
  const at::cuda::CUDAGuard guard(features.device());
  const int64_t n = features.size(0);
  const auto shape = EncodingShape::of(features.size(1), feature_pe, view_pe);
  auto out = at::empty({n, shape.D}, features.options());
  if (n == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "shading_input_fwd_cuda", [&] {
    encode_kernel<scalar_t><<<cuda_blocks(n), kCudaThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
        features.data_ptr<scalar_t>(), dirs.data_ptr<scalar_t>(), shape, n,
        out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor shading_input_bwd_cuda(const at::Tensor& grad_out, const at::Tensor& out,
                                  int64_t n_features, int64_t feature_pe, int64_t view_pe) {
  const at::cuda::CUDAGuard guard(out.device());
  const int64_t n = out.size(0);
  const auto shape = EncodingShape::of(n_features, feature_pe, view_pe);
  auto grad = at::empty({n, n_features}, out.options());
  if (n == 0) return grad;
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "shading_input_bwd_cuda", [&] {
    encode_grad_kernel<scalar_t>
        <<<cuda_blocks(n), kCudaThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
            grad_out.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), shape, n,
            grad.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad;
}

}  // namespace tf
