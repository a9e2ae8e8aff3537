// Ray/AABB intersection and fixed-step bitfield ray marching on CUDA: the GPU twin of
// march.cpp (same conventions and arithmetic, see there) and of tensorfields/core/_torch_impl.py.
// One thread per ray; marching counts each ray's kept intervals, prefix-sums the counts on the
// device, then writes the intervals at their offsets.

#include "aten_headers.h"

#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include <vector>

#include "cuda_common.cuh"
#include "march_job.h"

namespace tf {
namespace {

template <typename scalar_t>
__device__ inline bool occupied(const Grid<scalar_t>& g, const scalar_t p[3]) {
  if (g.bits == nullptr) return true;
  int64_t ijk[3];
  for (int c = 0; c < 3; ++c) {
    const scalar_t rel = (p[c] - g.lo[c]) / g.size[c];
    if (!(rel >= 0 && rel <= 1)) return false;
    const int64_t i = static_cast<int64_t>(mul_rn(rel, static_cast<scalar_t>(g.res[c])));
    ijk[c] = i < g.res[c] - 1 ? i : g.res[c] - 1;
  }
  const int64_t flat = (ijk[0] * g.res[1] + ijk[1]) * g.res[2] + ijk[2];
  return (g.bits[flat >> 3] >> (flat & 7)) & 1;
}

template <typename scalar_t>
__device__ inline int64_t interval_count(const Rays<scalar_t>& R, int64_t r) {
  scalar_t span = R.t_max[r] - R.t_min[r];
  span = span > 0 ? span : scalar_t(0);
  const scalar_t c = ceil(span / R.step - R.offset[r]);
  if (!(c > 0) || isinf(c)) return 0;
  const int64_t count = static_cast<int64_t>(c);
  return R.max_samples >= 0 && count > R.max_samples ? R.max_samples : count;
}

// Kept intervals of ray r, written from out[at] on when `write`; returns how many.
template <typename scalar_t, bool write>
__device__ int64_t march_one(const Rays<scalar_t>& R, const Grid<scalar_t>& g, int64_t r,
                             int64_t at, int64_t* ri, scalar_t* ts, scalar_t* te) {
  const int64_t count = interval_count(R, r);
  const scalar_t* o = R.o + 3 * r;
  const scalar_t* d = R.d + 3 * r;
  int64_t kept = 0;
  for (int64_t k = 0; k < count; ++k) {
    const scalar_t t0 =
        add_rn(R.t_min[r], mul_rn(add_rn(static_cast<scalar_t>(k), R.offset[r]), R.step));
    const scalar_t t1 = add_rn(t0, R.step);
    const scalar_t mid = mul_rn(scalar_t(0.5), add_rn(t0, t1));
    const scalar_t p[3] = {add_rn(o[0], mul_rn(d[0], mid)), add_rn(o[1], mul_rn(d[1], mid)),
                           add_rn(o[2], mul_rn(d[2], mid))};
    if (!occupied(g, p)) continue;
    if (write) {
      ri[at + kept] = r;
      ts[at + kept] = t0;
      te[at + kept] = t1;
    }
    ++kept;
  }
  return kept;
}

template <typename scalar_t>
__global__ void count_kernel(Rays<scalar_t> R, Grid<scalar_t> g, int64_t* counts) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= R.n) return;
  counts[r] = march_one<scalar_t, false>(R, g, r, 0, nullptr, nullptr, nullptr);
}

template <typename scalar_t>
__global__ void write_kernel(Rays<scalar_t> R, Grid<scalar_t> g, const int64_t* ends,
                             const int64_t* counts, int64_t* ri, scalar_t* ts, scalar_t* te) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= R.n) return;
  march_one<scalar_t, true>(R, g, r, ends[r] - counts[r], ri, ts, te);
}

template <typename scalar_t>
__global__ void aabb_kernel(const scalar_t* o, const scalar_t* d, const scalar_t* box,
                            scalar_t near, scalar_t far, int64_t n, scalar_t* t_min,
                            scalar_t* t_max) {
  const int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (r >= n) return;
  scalar_t enter = -INFINITY, leave = INFINITY;
  for (int c = 0; c < 3; ++c) {
    scalar_t dir = d[3 * r + c];
    if (fabs(dir) < static_cast<scalar_t>(1e-9)) dir = static_cast<scalar_t>(1e-9);
    const scalar_t a = (box[c] - o[3 * r + c]) / dir, b = (box[c + 3] - o[3 * r + c]) / dir;
    enter = max(enter, min(a, b));
    leave = min(leave, max(a, b));
  }
  t_min[r] = min(max(enter, near), far);
  t_max[r] = min(max(leave, near), far);
}

}  // namespace

std::vector<at::Tensor> ray_aabb_intersect_cuda(const at::Tensor& origins,
                                                const at::Tensor& directions,
                                                const at::Tensor& aabb, double near,
                                                double far) {
  const c10::cuda::OptionalCUDAGuard guard(origins.device());
  const int64_t n = origins.size(0);
  auto t_min = at::empty({n}, origins.options()), t_max = at::empty({n}, origins.options());
  if (n == 0) return {t_min, t_max};
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "ray_aabb_intersect_cuda", [&] {
    aabb_kernel<scalar_t><<<cuda_blocks(n), kCudaThreads, 0,
                            c10::cuda::getCurrentCUDAStream()>>>(
        origins.data_ptr<scalar_t>(), directions.data_ptr<scalar_t>(), aabb.data_ptr<scalar_t>(),
        static_cast<scalar_t>(near), static_cast<scalar_t>(far), n, t_min.data_ptr<scalar_t>(),
        t_max.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {t_min, t_max};
}

std::vector<at::Tensor> march_rays_cuda(const at::Tensor& origins, const at::Tensor& directions,
                                        const at::Tensor& t_min, const at::Tensor& t_max,
                                        double step_size, const at::Tensor& offsets,
                                        const at::Tensor& bits, at::IntArrayRef resolution,
                                        const at::Tensor& aabb, int64_t max_samples) {
  const c10::cuda::OptionalCUDAGuard guard(origins.device());
  const int64_t n = origins.size(0);
  const auto stream = c10::cuda::getCurrentCUDAStream();
  std::vector<at::Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "march_rays_cuda", [&] {
    const auto R = rays_of<scalar_t>(origins, directions, t_min, t_max, step_size, offsets,
                                     max_samples);
    const auto g = grid_of<scalar_t>(bits, resolution, aabb);
    auto counts = at::zeros({n}, origins.options().dtype(at::kLong));
    if (n > 0) {
      count_kernel<scalar_t><<<cuda_blocks(n), kCudaThreads, 0, stream>>>(
          R, g, counts.data_ptr<int64_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    const auto ends = counts.cumsum(0);
    const int64_t total = n > 0 ? ends[n - 1].item<int64_t>() : 0;  // sizes the outputs
    auto ri = at::empty({total}, counts.options());
    auto ts = at::empty({total}, origins.options()), te = at::empty({total}, origins.options());
    if (total > 0) {
      write_kernel<scalar_t><<<cuda_blocks(n), kCudaThreads, 0, stream>>>(
          R, g, ends.data_ptr<int64_t>(), counts.data_ptr<int64_t>(), ri.data_ptr<int64_t>(),
          ts.data_ptr<scalar_t>(), te.data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    out = {ri, ts, te};
  });
  return out;
}

}  // namespace tf
