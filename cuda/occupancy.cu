// Occupancy bitfield from per-cell alpha on CUDA: the GPU twin of occupancy.cpp (threshold,
// cube max-pool dilation, bit packing; see there). One thread per output byte reads the
// thresholded cells in the window of each of its 8 cells.

#include "aten_headers.h"

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "cuda_common.cuh"

namespace tf {
namespace {

template <typename scalar_t>
__global__ void threshold_kernel(const scalar_t* alpha, int64_t n, scalar_t threshold,
                                 uint8_t* above) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i < n) above[i] = alpha[i] > threshold;
}

__global__ void pack_kernel(const uint8_t* above, int64_t X, int64_t Y, int64_t Z,
                            int64_t radius, uint8_t* bits) {
  const int64_t byte = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  const int64_t n = X * Y * Z;
  if (byte * 8 >= n) return;
  uint8_t v = 0;
  for (int64_t b = 0; b < 8 && byte * 8 + b < n; ++b) {
    const int64_t flat = byte * 8 + b;
    const int64_t i = flat / (Y * Z), j = (flat / Z) % Y, k = flat % Z;
    bool set = false;
    for (int64_t a = max(i - radius, int64_t(0)); a <= min(i + radius, X - 1) && !set; ++a)
      for (int64_t c = max(j - radius, int64_t(0)); c <= min(j + radius, Y - 1) && !set; ++c)
        for (int64_t e = max(k - radius, int64_t(0)); e <= min(k + radius, Z - 1); ++e)
          if (above[(a * Y + c) * Z + e]) {
            set = true;
            break;
          }
    v |= static_cast<uint8_t>(set) << b;
  }
  bits[byte] = v;
}

}  // namespace

at::Tensor occupancy_bits_cuda(const at::Tensor& alpha, double threshold, int64_t kernel) {
  const c10::cuda::OptionalCUDAGuard guard(alpha.device());
  const int64_t X = alpha.size(0), Y = alpha.size(1), Z = alpha.size(2), n = alpha.numel();
  auto bits = at::empty({(n + 7) / 8}, alpha.options().dtype(at::kByte));
  if (n == 0) return bits;
  auto above = at::empty({n}, bits.options());
  const auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(alpha.scalar_type(), "occupancy_bits_cuda", [&] {
    threshold_kernel<scalar_t><<<cuda_blocks(n), kCudaThreads, 0, stream>>>(
        alpha.data_ptr<scalar_t>(), n, static_cast<scalar_t>(threshold),
        above.data_ptr<uint8_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  pack_kernel<<<cuda_blocks(bits.numel()), kCudaThreads, 0, stream>>>(
      above.data_ptr<uint8_t>(), X, Y, Z, kernel / 2, bits.data_ptr<uint8_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return bits;
}

}  // namespace tf
