// The per-point arithmetic of the local CP mix on CPU, shared by local_cp.cpp (the mix and
// its backward) and local_cp_transmittance.cpp (the fused no-grad density pass).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "local_cp_job.h"

namespace tf {

// The inner loops run over the rank with __restrict__ rows, so GCC vectorises them (through
// Corner's pointer array it cannot rule out aliasing and falls back to scalar code).

// v[r] = lo[r] + f * (hi[r] - lo[r]): one axis's line value at the point.
template <typename scalar_t>
inline void lerp_row(scalar_t* __restrict__ v, const scalar_t* __restrict__ lo,
                     const scalar_t* __restrict__ hi, scalar_t f, int64_t R) {
  for (int64_t r = 0; r < R; ++r) v[r] = lo[r] + f * (hi[r] - lo[r]);
}

// row[r] += w * x[r] * y[r] * z[r]
template <typename scalar_t>
inline void add_product(scalar_t* __restrict__ row, const scalar_t* __restrict__ x,
                        const scalar_t* __restrict__ y, const scalar_t* __restrict__ z,
                        scalar_t w, int64_t R) {
  for (int64_t r = 0; r < R; ++r) row[r] += w * x[r] * y[r] * z[r];
}

// Ranks up to this use stack rows; larger ones a heap buffer per task.
constexpr int64_t kStackRank = 128;

template <typename scalar_t>
struct AxisRows {
  scalar_t stack[3][kStackRank];
  std::vector<scalar_t> heap;
  scalar_t* v[3];
  explicit AxisRows(int64_t R) {
    scalar_t* base = stack[0];
    if (R > kStackRank) {
      heap.resize(3 * R);
      base = heap.data();
    }
    for (int a = 0; a < 3; ++a) v[a] = R > kStackRank ? base + a * R : stack[a];
  }
};

// row[r] = sum_k w_k * X_r * Y_r * Z_r over the cubes of point i (the point's mix).
template <typename scalar_t>
inline void mix_row(const LocalCP<scalar_t>& job, int64_t i, AxisRows<scalar_t>& rows,
                    scalar_t* __restrict__ row) {
  std::fill(row, row + job.r, scalar_t(0));
  for (int64_t k = 0; k < job.k; ++k) {
    Corner<scalar_t> c;
    if (!job.corner(i, k, c)) continue;
    for (int a = 0; a < 3; ++a) lerp_row(rows.v[a], c.lo[a], c.hi[a], c.frac[a], job.r);
    add_product(row, rows.v[0], rows.v[1], rows.v[2], c.w, job.r);
  }
}

// sum_r of that row (a Strivec density at one scale); `row` is scratch of job.r values.
template <typename scalar_t>
inline scalar_t mix_sum(const LocalCP<scalar_t>& job, int64_t i, AxisRows<scalar_t>& rows,
                        scalar_t* __restrict__ row) {
  mix_row(job, i, rows, row);
  scalar_t total = 0;
  for (int64_t r = 0; r < job.r; ++r) total += row[r];
  return total;
}

}  // namespace tf
