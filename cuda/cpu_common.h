// Small helpers shared by the CPU sources of the native core.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
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

}  // namespace tf
