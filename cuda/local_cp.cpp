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

#include "local_cp_cpu.h"

namespace tf {
namespace {

constexpr int64_t kPointsPerTask = 256;

// summed: out is (n,) and gets each point's sum over the rank (its row: per-task scratch).
template <typename scalar_t>
void mix_forward(const LocalCP<scalar_t>& job, scalar_t* out, bool summed) {
  at::parallel_for(0, job.n, kPointsPerTask, [&](int64_t lo, int64_t hi) {
    AxisRows<scalar_t> rows(job.r);
    std::vector<scalar_t> scratch(summed ? job.r : 0);
    for (int64_t i = lo; i < hi; ++i) {
      if (summed)
        out[i] = mix_sum(job, i, rows, scratch.data());
      else
        mix_row(job, i, rows, out + i * job.r);
    }
  });
}

// The two nodes' gradient rows of one axis: += g[r] * a[r] * b[r] * w * (1 - f) and ... * f.
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

// The same for a gradient that is one value for every component (after a summed forward),
// folded into the weight: w = g * the cube's weight.
template <typename scalar_t>
inline void scatter_axis_uniform(scalar_t* __restrict__ lo, scalar_t* __restrict__ hi,
                                 const scalar_t* __restrict__ a, const scalar_t* __restrict__ b,
                                 scalar_t w, scalar_t f, int64_t R) {
  const scalar_t w_lo = w * (1 - f), w_hi = w * f;
  for (int64_t r = 0; r < R; ++r) {
    const scalar_t others = a[r] * b[r];
    lo[r] += others * w_lo;
    hi[r] += others * w_hi;
  }
}

// The (point, slot) pairs of each cube, in point order: a counting sort, each of `parts`
// threads counting and placing one contiguous range of the pairs. `start[c]` is where cube c's
// pairs begin in the result.
inline std::vector<int64_t> pairs_by_cube(const int64_t* ids, int64_t pairs_in, int64_t m,
                                          std::vector<int64_t>& start) {
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(),
                                                               pairs_in / 65536 + 1));
  const int64_t span = (pairs_in + parts - 1) / parts;
  std::vector<int64_t> count(parts * (m + 1), 0);  // count[t * (m + 1) + c]
  at::parallel_for(0, parts, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t* own = count.data() + t * (m + 1);
      for (int64_t p = t * span; p < std::min(pairs_in, (t + 1) * span); ++p)
        if (ids[p] >= 0) ++own[ids[p]];
    }
  });
  start.assign(m + 1, 0);
  int64_t total = 0;
  for (int64_t c = 0; c < m; ++c) {
    start[c] = total;
    for (int64_t t = 0; t < parts; ++t) {  // each part's first slot for cube c
      const int64_t n = count[t * (m + 1) + c];
      count[t * (m + 1) + c] = total;
      total += n;
    }
  }
  start[m] = total;
  std::vector<int64_t> pairs(total);
  at::parallel_for(0, parts, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      int64_t* next = count.data() + t * (m + 1);
      for (int64_t p = t * span; p < std::min(pairs_in, (t + 1) * span); ++p)
        if (ids[p] >= 0) pairs[next[ids[p]]++] = p;
    }
  });
  return pairs;
}

// Pairs grouped by cube, then split over cubes: each task owns whole cubes' gradient rows, so
// no two tasks write the same value and the sums come in a fixed order. Tasks are runs of
// cubes holding about equal numbers of pairs (cubes differ a lot in how many points they
// hold), handed out dynamically.
// summed: grad_out is (n,), the same for every component of a point.
template <typename scalar_t>
void mix_backward(const LocalCP<scalar_t>& job, const scalar_t* grad_out, bool summed,
                  scalar_t* grad) {
  const int64_t node_stride = job.r, cube_stride = job.l * job.r, axis_stride = job.m * cube_stride;
  std::vector<int64_t> start;
  const std::vector<int64_t> pairs = pairs_by_cube(job.ids, job.n * job.k, job.m, start);
  const int64_t tasks_wanted = 8 * at::get_num_threads();
  const int64_t per_task = std::max<int64_t>(1, start[job.m] / tasks_wanted);
  std::vector<int64_t> task_cubes{0};  // task t covers cubes [task_cubes[t], task_cubes[t + 1])
  for (int64_t c = 0; c < job.m; ++c)
    if (start[c + 1] - start[task_cubes.back()] >= per_task) task_cubes.push_back(c + 1);
  if (task_cubes.back() != job.m) task_cubes.push_back(job.m);
  const int64_t tasks = static_cast<int64_t>(task_cubes.size()) - 1;
#pragma omp parallel num_threads(std::max<int64_t>(1, std::min<int64_t>(tasks, at::get_num_threads())))
  {
    AxisRows<scalar_t> rows(job.r);
#pragma omp for schedule(dynamic, 1)
    for (int64_t t = 0; t < tasks; ++t) {
      for (int64_t q = start[task_cubes[t]]; q < start[task_cubes[t + 1]]; ++q) {
        const int64_t i = pairs[q] / job.k, k = pairs[q] % job.k;
        Corner<scalar_t> c;
        job.corner(i, k, c);
        for (int a = 0; a < 3; ++a) lerp_row(rows.v[a], c.lo[a], c.hi[a], c.frac[a], job.r);
        for (int a = 0; a < 3; ++a) {
          scalar_t* base = grad + a * axis_stride + c.id * cube_stride + c.node[a] * node_stride;
          const scalar_t *x = rows.v[(a + 1) % 3], *y = rows.v[(a + 2) % 3];
          if (summed)
            scatter_axis_uniform(base, base + node_stride, x, y, c.w * grad_out[i], c.frac[a],
                                 job.r);
          else
            scatter_axis(base, base + node_stride, grad_out + i * job.r, x, y, c.w, c.frac[a],
                         job.r);
        }
      }
    }
  }
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
