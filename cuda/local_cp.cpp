// Strivec's local CP tri-vector lookups, CPU: per point, the inverse-distance mix of the CP
// products of the K cubes covering it, forward and backward (gradients for the lines only).
//
// Twin of local_cp_mix_torch in tensorfields/core/_torch_impl.py (the oracle):
//   out[i, r] = sum_k w[i, k] * X_r(u_x) * Y_r(u_y) * Z_r(u_z) of cube ids[i, k] (-1: none),
// where each cube's lines (3, m, l, r) hold l nodes across [c - R, c + R] (align-corners) and
// u = clamp((p - c + R) / 2R * (l - 1), 0, l - 1), read linearly between nodes. The summed mode
// (a Strivec density) returns sum_r out[i, r] without writing the (n, r) block, and its backward
// takes that (n,) gradient directly.

#include "aten_headers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "local_cp_job.h"

namespace tf {
namespace {

constexpr int64_t kPointsPerTask = 256;

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

// The two nodes' gradient rows of one axis: += g * others * (1 - f) and g * others * f.
template <typename scalar_t>
inline void scatter_axis(scalar_t* __restrict__ lo, scalar_t* __restrict__ hi,
                         const scalar_t* __restrict__ g, const scalar_t* __restrict__ a,
                         const scalar_t* __restrict__ b, scalar_t w, scalar_t f, int64_t R) {
  const scalar_t w_lo = w * (1 - f), w_hi = w * f;
  for (int64_t r = 0; r < R; ++r) {
    const scalar_t others = a[r] * b[r] * g[r];
    lo[r] += others * w_lo;
    hi[r] += others * w_hi;
  }
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

// summed: out is (n,) and gets each point's sum over the rank (its row is built on the stack).
template <typename scalar_t>
void mix_forward(const LocalCP<scalar_t>& job, scalar_t* out, bool summed) {
  at::parallel_for(0, job.n, kPointsPerTask, [&](int64_t lo, int64_t hi) {
    AxisRows<scalar_t> rows(job.r);
    std::vector<scalar_t> scratch(summed ? job.r : 0);
    for (int64_t i = lo; i < hi; ++i) {
      scalar_t* row = summed ? scratch.data() : out + i * job.r;
      std::fill(row, row + job.r, scalar_t(0));
      for (int64_t k = 0; k < job.k; ++k) {
        Corner<scalar_t> c;
        if (!job.corner(i, k, c)) continue;
        for (int a = 0; a < 3; ++a) lerp_row(rows.v[a], c.lo[a], c.hi[a], c.frac[a], job.r);
        add_product(row, rows.v[0], rows.v[1], rows.v[2], c.w, job.r);
      }
      if (summed) {
        scalar_t total = 0;
        for (int64_t r = 0; r < job.r; ++r) total += row[r];
        out[i] = total;
      }
    }
  });
}

// Pairs grouped by cube (a counting sort), then split over cubes: each task owns whole cubes'
// gradient rows, so no two tasks write the same value and the sums come in a fixed order.
// summed: grad_out is (n,), the same for every component of a point.
template <typename scalar_t>
void mix_backward(const LocalCP<scalar_t>& job, const scalar_t* grad_out, bool summed,
                  scalar_t* grad) {
  const int64_t node_stride = job.r, cube_stride = job.l * job.r, axis_stride = job.m * cube_stride;
  std::vector<int64_t> start(job.m + 1, 0);
  for (int64_t p = 0; p < job.n * job.k; ++p)
    if (job.ids[p] >= 0) ++start[job.ids[p] + 1];
  for (int64_t c = 0; c < job.m; ++c) start[c + 1] += start[c];
  std::vector<int64_t> pairs(start[job.m]);
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t p = 0; p < job.n * job.k; ++p)
    if (job.ids[p] >= 0) pairs[fill[job.ids[p]]++] = p;
  at::parallel_for(0, job.m, 16, [&](int64_t c0, int64_t c1) {
    AxisRows<scalar_t> rows(job.r);
    std::vector<scalar_t> broadcast(summed ? job.r : 0);
    for (int64_t q = start[c0]; q < start[c1]; ++q) {
      const int64_t i = pairs[q] / job.k, k = pairs[q] % job.k;
      Corner<scalar_t> c;
      job.corner(i, k, c);
      for (int a = 0; a < 3; ++a) lerp_row(rows.v[a], c.lo[a], c.hi[a], c.frac[a], job.r);
      const scalar_t* g = grad_out + i * job.r;
      if (summed) {
        std::fill(broadcast.begin(), broadcast.end(), grad_out[i]);
        g = broadcast.data();
      }
      for (int a = 0; a < 3; ++a) {
        scalar_t* base = grad + a * axis_stride + c.id * cube_stride + c.node[a] * node_stride;
        scatter_axis(base, base + node_stride, g, rows.v[(a + 1) % 3], rows.v[(a + 2) % 3], c.w,
                     c.frac[a], job.r);
      }
    }
  });
}

}  // namespace

at::Tensor local_cp_mix_fwd_cpu(const at::Tensor& xyz, const at::Tensor& ids,
                                const at::Tensor& weights, const at::Tensor& centres,
                                double half_extent, const at::Tensor& lines, bool summed) {
  auto out = summed ? at::empty({xyz.size(0)}, xyz.options())
                    : at::empty({xyz.size(0), lines.size(3)}, xyz.options());
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "local_cp_mix_fwd_cpu", [&] {
    const auto job = LocalCP<scalar_t>::of(xyz, ids, weights, centres, half_extent, lines);
    mix_forward(job, out.data_ptr<scalar_t>(), summed);
  });
  return out;
}

at::Tensor local_cp_mix_bwd_cpu(const at::Tensor& grad_out, const at::Tensor& xyz,
                                const at::Tensor& ids, const at::Tensor& weights,
                                const at::Tensor& centres, double half_extent,
                                const at::Tensor& lines) {
  auto grad = at::zeros_like(lines);
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "local_cp_mix_bwd_cpu", [&] {
    const auto job = LocalCP<scalar_t>::of(xyz, ids, weights, centres, half_extent, lines);
    mix_backward(job, grad_out.data_ptr<scalar_t>(), grad_out.dim() == 1,
                 grad.data_ptr<scalar_t>());
  });
  return grad;
}

}  // namespace tf
