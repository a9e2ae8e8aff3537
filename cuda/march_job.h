// Host-side description of a marching job, shared by march.cpp and march.cu.
#pragma once

#include "aten_headers.h"

#include <cstdint>

namespace tf {

// The occupancy bitfield (nullptr: no occupancy, keep every interval) over its box.
template <typename scalar_t>
struct Grid {
  const uint8_t* bits;
  int64_t res[3];
  scalar_t lo[3], size[3];
};

template <typename scalar_t>
struct Rays {
  const scalar_t *o, *d, *t_min, *t_max, *offset;
  scalar_t step;
  int64_t max_samples, n;
};

template <typename scalar_t>
Grid<scalar_t> grid_of(const at::Tensor& bits, at::IntArrayRef resolution,
                       const at::Tensor& aabb) {
  Grid<scalar_t> g{};
  g.bits = bits.numel() > 0 ? bits.data_ptr<uint8_t>() : nullptr;
  const auto box = aabb.to(at::kCPU).contiguous();  // 6 values: read once on the host
  const scalar_t* b = box.data_ptr<scalar_t>();
  for (int c = 0; c < 3; ++c) {
    g.res[c] = resolution.size() == 3 ? resolution[c] : 1;
    g.lo[c] = b[c];
    g.size[c] = b[c + 3] - b[c];
  }
  return g;
}

template <typename scalar_t>
Rays<scalar_t> rays_of(const at::Tensor& origins, const at::Tensor& directions,
                       const at::Tensor& t_min, const at::Tensor& t_max, double step_size,
                       const at::Tensor& offsets, int64_t max_samples) {
  return {origins.data_ptr<scalar_t>(), directions.data_ptr<scalar_t>(),
          t_min.data_ptr<scalar_t>(),   t_max.data_ptr<scalar_t>(),
          offsets.data_ptr<scalar_t>(), static_cast<scalar_t>(step_size),
          max_samples,                  origins.size(0)};
}

}  // namespace tf
