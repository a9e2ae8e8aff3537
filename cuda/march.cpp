// Ray/AABB intersection and fixed-step ray marching through a bitfield occupancy grid, CPU.
//
// Twins of ray_aabb_intersect_torch and march_rays_torch in tensorfields/core/_torch_impl.py
// (the oracles), with the same arithmetic in the same order, so both emit the same samples:
//   count_r = ceil(max(t_max - t_min, 0) / step - offset_r), capped at max_samples (if >= 0);
//   interval k of ray r starts at t_min + (k + offset_r) * step and is one step long; it is
//   kept when its midpoint lies inside the grid's box in a cell whose bit is set.
// Bitfield layout: cell (i, j, k) of a (X, Y, Z) grid has flat index (i * Y + j) * Z + k, stored
// as bit (flat & 7) of byte (flat >> 3). No occupancy (empty bitfield): every interval is kept.
// Output is packed (nerfacc's layout): ray indices, t_starts, t_ends, sorted by ray then t.

#include "aten_headers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_common.h"
#include "march_job.h"

namespace tf {
namespace {

template <typename scalar_t>
inline bool occupied(const Grid<scalar_t>& g, const scalar_t p[3]) {
  if (g.bits == nullptr) return true;
  int64_t ijk[3];
  for (int c = 0; c < 3; ++c) {
    const scalar_t rel = (p[c] - g.lo[c]) / g.size[c];
    if (!(rel >= 0 && rel <= 1)) return false;  // outside the box (or NaN)
    ijk[c] = std::min(static_cast<int64_t>(rel * static_cast<scalar_t>(g.res[c])), g.res[c] - 1);
  }
  const int64_t flat = (ijk[0] * g.res[1] + ijk[1]) * g.res[2] + ijk[2];
  return (g.bits[flat >> 3] >> (flat & 7)) & 1;
}

template <typename scalar_t>
inline int64_t interval_count(const Rays<scalar_t>& R, int64_t r) {
  const scalar_t span = std::max(R.t_max[r] - R.t_min[r], scalar_t(0));
  const scalar_t c = std::ceil(span / R.step - R.offset[r]);
  if (!(c > 0) || std::isinf(c)) return 0;  // empty, NaN, or endless
  const scalar_t cap = R.max_samples >= 0 ? static_cast<scalar_t>(R.max_samples) : c;
  return static_cast<int64_t>(std::min(c, cap));
}

// Visits the kept intervals of ray r in order: emit(t_start, t_end). Returns how many.
template <typename scalar_t, typename Emit>
inline int64_t march_one(const Rays<scalar_t>& R, const Grid<scalar_t>& g, int64_t r, Emit emit) {
  const int64_t count = interval_count(R, r);
  const scalar_t *o = R.o + 3 * r, *d = R.d + 3 * r;
  int64_t kept = 0;
  for (int64_t k = 0; k < count; ++k) {
    const scalar_t t0 = R.t_min[r] + (static_cast<scalar_t>(k) + R.offset[r]) * R.step;
    const scalar_t t1 = t0 + R.step;
    const scalar_t mid = scalar_t(0.5) * (t0 + t1);
    const scalar_t p[3] = {o[0] + d[0] * mid, o[1] + d[1] * mid, o[2] + d[2] * mid};
    if (!occupied(g, p)) continue;
    emit(t0, t1);
    ++kept;
  }
  return kept;
}

template <typename scalar_t>
std::vector<at::Tensor> march_loop(const Rays<scalar_t>& R, const Grid<scalar_t>& g, int64_t n,
                                   const at::TensorOptions& options) {
  // Pass 1 counts each ray's kept intervals; pass 2 writes them at the prefix-summed offsets.
  std::vector<int64_t> first(n + 1, 0);
  at::parallel_for(0, n, kRaysPerTask, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) first[r + 1] = march_one(R, g, r, [](scalar_t, scalar_t) {});
  });
  for (int64_t r = 0; r < n; ++r) first[r + 1] += first[r];
  const int64_t total = first[n];
  auto ray_indices = at::empty({total}, options.dtype(at::kLong));
  auto t_starts = at::empty({total}, options), t_ends = at::empty({total}, options);
  int64_t* ri = ray_indices.data_ptr<int64_t>();
  scalar_t *ts = t_starts.data_ptr<scalar_t>(), *te = t_ends.data_ptr<scalar_t>();
  at::parallel_for(0, n, kRaysPerTask, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t at = first[r];
      march_one(R, g, r, [&](scalar_t t0, scalar_t t1) {
        ri[at] = r;
        ts[at] = t0;
        te[at] = t1;
        ++at;
      });
    }
  });
  return {ray_indices, t_starts, t_ends};
}

template <typename scalar_t>
void aabb_loop(const scalar_t* o, const scalar_t* d, const scalar_t box[6], scalar_t near,
               scalar_t far, int64_t n, scalar_t* t_min, scalar_t* t_max) {
  at::parallel_for(0, n, kRaysPerTask * 4, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      scalar_t enter = -INFINITY, leave = INFINITY;
      for (int c = 0; c < 3; ++c) {
        scalar_t dir = d[3 * r + c];
        // Axis-parallel rays: a tiny direction keeps the slab test finite.
        if (std::abs(dir) < static_cast<scalar_t>(1e-9)) dir = static_cast<scalar_t>(1e-9);
        const scalar_t a = (box[c] - o[3 * r + c]) / dir, b = (box[c + 3] - o[3 * r + c]) / dir;
        enter = std::max(enter, std::min(a, b));
        leave = std::min(leave, std::max(a, b));
      }
      t_min[r] = std::min(std::max(enter, near), far);
      t_max[r] = std::min(std::max(leave, near), far);
    }
  });
}

}  // namespace

std::vector<at::Tensor> ray_aabb_intersect_cpu(const at::Tensor& origins,
                                               const at::Tensor& directions,
                                               const at::Tensor& aabb, double near, double far) {
  const int64_t n = origins.size(0);
  auto t_min = at::empty({n}, origins.options()), t_max = at::empty({n}, origins.options());
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "ray_aabb_intersect_cpu", [&] {
    const auto box = aabb.contiguous();
    aabb_loop<scalar_t>(origins.data_ptr<scalar_t>(), directions.data_ptr<scalar_t>(),
                        box.data_ptr<scalar_t>(), static_cast<scalar_t>(near),
                        static_cast<scalar_t>(far), n, t_min.data_ptr<scalar_t>(),
                        t_max.data_ptr<scalar_t>());
  });
  return {t_min, t_max};
}

std::vector<at::Tensor> march_rays_cpu(const at::Tensor& origins, const at::Tensor& directions,
                                       const at::Tensor& t_min, const at::Tensor& t_max,
                                       double step_size, const at::Tensor& offsets,
                                       const at::Tensor& bits, at::IntArrayRef resolution,
                                       const at::Tensor& aabb, int64_t max_samples) {
  std::vector<at::Tensor> out;
  AT_DISPATCH_FLOATING_TYPES(origins.scalar_type(), "march_rays_cpu", [&] {
    const auto R = rays_of<scalar_t>(origins, directions, t_min, t_max, step_size, offsets,
                                     max_samples);
    out = march_loop(R, grid_of<scalar_t>(bits, resolution, aabb), R.n, origins.options());
  });
  return out;
}

}  // namespace tf
