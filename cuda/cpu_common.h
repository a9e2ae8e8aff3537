// Small helpers shared by the CPU sources of the native core.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace tf {

// Rays per parallel task: enough work per task that scheduling costs nothing.
constexpr int64_t kRaysPerTask = 256;

// [start, end) of each ray's packed samples; ray_indices must be sorted (checked by the
// bindings).
inline std::vector<int64_t> ray_offsets(const int64_t* ray, int64_t s, int64_t n_rays) {
  std::vector<int64_t> offsets(n_rays + 1);
  at::parallel_for(0, n_rays + 1, 1024, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) offsets[r] = std::lower_bound(ray, ray + s, r) - ray;
  });
  return offsets;
}

// PyTorch's softplus (threshold 20).
template <typename scalar_t>
inline scalar_t softplus(scalar_t x) {
  return x > scalar_t(20) ? x : std::log1p(std::exp(x));
}

// The transmittance scan of the density passes that stop each ray where it turns opaque: over
// m consecutive samples of one ray with optical depths o, writes T = exp(-depth in front) and
// adds each o to depth, until T < eps. Returns how many samples it kept (m: none turned it
// opaque).
template <typename scalar_t>
inline int64_t scan_transmittance(const scalar_t* o, int64_t m, scalar_t eps, double& depth,
                                  scalar_t* T) {
  int64_t k = 0;
  for (; k < m; ++k) {
    const scalar_t trans = static_cast<scalar_t>(std::exp(-depth));
    if (trans < eps) break;
    T[k] = trans;
    depth += static_cast<double>(o[k]);
  }
  return k;
}

}  // namespace tf
