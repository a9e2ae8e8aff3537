// Strivec's no-grad density pass of a training render, on CPU (OpenMP): per ray, front to back,
//   per scale s: the k cubes covering xyz_i and their weights (covering_job.h),
//   v_i = sum over scales of the mixed components' sum (local_cp_cpu.h), -inf where some scale
//         covers nothing (empty space),
//   sigma_i = softplus(v_i + shift) * scale,  T_i = exp(-sum_{j<i} sigma_j * (t_end_j - t_start_j)),
// stopping at the first sample with T_i < eps. Samples from there on are never looked up
// (v = T = 0, ids -1, weights 0). Twin of local_cp_density_transmittance_torch in
// tensorfields/core/opaque.py, which looks up every sample, then composites.
//
// Why fused: more than half of a lego step's marched samples lie behind surfaces that are
// already opaque, and each costs a covering lookup at three scales plus the density mixes.
// The kept samples' cubes come back too, so the differentiable pass and the colour reuse them.
// No CUDA twin: on a GPU the Python side composes the per-sample native ops.

#include "cpu_common.h"

#include <cmath>
#include <limits>

#include "covering_job.h"
#include "local_cp_cpu.h"

namespace tf {
namespace {

// Rays per dynamically scheduled chunk: rays differ widely in how many samples they keep.
constexpr int64_t kRayChunk = 16;
// Samples of a ray evaluated before their transmittance is scanned: a few, so that the exps
// run on independent values, but each lookup past the opaque point is costly.
constexpr int64_t kBlock = 4;

template <typename scalar_t>
struct Scale {
  Covering<scalar_t> find;  // writes into ids / weights ...
  LocalCP<scalar_t> mix;    // ... which the mix then reads
  int64_t* ids;
  scalar_t* weights;
};

template <typename scalar_t>
struct Pass {
  const scalar_t *t0, *t1;
  const int64_t* offsets;
  int64_t n_rays, k, max_rank;
  scalar_t shift, scale, eps;
  scalar_t *v, *T;
};

// The density feature of sample i (and its cubes at every scale, written to the outputs).
template <typename scalar_t>
scalar_t sample_value(const std::vector<Scale<scalar_t>>& scales, int64_t i,
                      AxisRows<scalar_t>& rows, scalar_t* row) {
  bool covered = true;
  for (const auto& s : scales) {
    s.find.lookup(i, s.ids, s.weights);
    covered = covered && s.ids[i * s.find.k] >= 0;
  }
  if (!covered) return -std::numeric_limits<scalar_t>::infinity();
  scalar_t total = 0;
  for (const auto& s : scales) total += mix_sum(s.mix, i, rows, row);
  return total;
}

template <typename scalar_t>
void density_transmittance_loop(const Pass<scalar_t>& p,
                                const std::vector<Scale<scalar_t>>& scales) {
#pragma omp parallel num_threads(at::get_num_threads())
  {
    AxisRows<scalar_t> rows(p.max_rank);
    std::vector<scalar_t> row(p.max_rank);
#pragma omp for schedule(dynamic, kRayChunk)
    for (int64_t r = 0; r < p.n_rays; ++r) {
      double depth = 0;  // optical depth in front of the current sample
      int64_t i = p.offsets[r];
      const int64_t end = p.offsets[r + 1];
      bool opaque = false;
      while (i < end && !opaque) {
        const int64_t m = std::min(kBlock, end - i);
        scalar_t o[kBlock];
        for (int64_t j = 0; j < m; ++j) {
          p.v[i + j] = sample_value(scales, i + j, rows, row.data());
          o[j] = softplus(p.v[i + j] + p.shift) * p.scale * (p.t1[i + j] - p.t0[i + j]);
        }
        const int64_t kept = scan_transmittance(o, m, p.eps, depth, p.T + i);
        opaque = kept < m;
        i += kept;
      }
      for (; i < end; ++i) {  // never reached (or looked up past the opaque point): cleared
        p.v[i] = p.T[i] = 0;
        for (const auto& s : scales)
          for (int64_t c = 0; c < p.k; ++c) {
            s.ids[i * p.k + c] = -1;
            s.weights[i * p.k + c] = 0;
          }
      }
    }
  }
}

}  // namespace

std::vector<at::Tensor> local_cp_density_transmittance_cpu(
    const at::Tensor& xyz, const std::vector<at::Tensor>& centres,
    const std::vector<double>& half_extents, const std::vector<at::Tensor>& aabbs,
    const std::vector<int64_t>& resolutions, const std::vector<at::Tensor>& cell_slots,
    const std::vector<at::Tensor>& tables, const std::vector<at::Tensor>& lines, int64_t k,
    double idw_eps, const at::Tensor& t_starts, const at::Tensor& t_ends,
    const at::Tensor& ray_indices, int64_t n_rays, double shift, double scale, double eps) {
  const int64_t s = xyz.size(0), n_scales = static_cast<int64_t>(centres.size());
  auto v = at::empty({s}, xyz.options()), T = at::empty({s}, xyz.options());
  std::vector<at::Tensor> out{v, T};
  for (int64_t level = 0; level < n_scales; ++level)
    out.push_back(at::empty({s, k}, xyz.options().dtype(at::kLong)));
  for (int64_t level = 0; level < n_scales; ++level) out.push_back(at::empty({s, k}, xyz.options()));
  if (s == 0) return out;
  const auto offsets = ray_offsets(ray_indices.data_ptr<int64_t>(), s, n_rays);
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "local_cp_density_transmittance_cpu", [&] {
    std::vector<Scale<scalar_t>> scales;
    int64_t max_rank = 1;
    for (int64_t level = 0; level < n_scales; ++level) {
      const at::Tensor &ids = out[2 + level], &weights = out[2 + n_scales + level];
      const at::IntArrayRef resolution(resolutions.data() + 3 * level, 3);
      scales.push_back({Covering<scalar_t>::of(xyz, centres[level], half_extents[level],
                                               aabbs[level], resolution, cell_slots[level],
                                               tables[level], k, idw_eps),
                        LocalCP<scalar_t>::of(xyz, ids, weights, centres[level],
                                              half_extents[level], lines[level]),
                        ids.data_ptr<int64_t>(), weights.data_ptr<scalar_t>()});
      max_rank = std::max(max_rank, lines[level].size(3));
    }
    const Pass<scalar_t> pass{t_starts.data_ptr<scalar_t>(),
                              t_ends.data_ptr<scalar_t>(),
                              offsets.data(),
                              n_rays,
                              k,
                              max_rank,
                              static_cast<scalar_t>(shift),
                              static_cast<scalar_t>(scale),
                              static_cast<scalar_t>(eps),
                              v.data_ptr<scalar_t>(),
                              T.data_ptr<scalar_t>()};
    density_transmittance_loop(pass, scales);
  });
  return out;
}

}  // namespace tf
