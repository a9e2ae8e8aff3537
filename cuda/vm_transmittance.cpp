// The no-grad density pass of a training render, on CPU (OpenMP): per ray, front to back,
//   v_i = vm_interp summed mode at xyz_i (the TensoRF density features),
//   sigma_i = softplus(v_i + shift) * scale,
//   T_i = exp(-sum_{j<i} sigma_j * (t_end_j - t_start_j))   (as render_transmittance_fwd),
// stopping at the first sample with T_i < eps: from there on the ray is opaque, and its samples
// are never looked up (v = T = 0). Twin of vm_density_transmittance_torch in
// tensorfields/core/_torch_impl.py, which looks up every sample, then composites.
//
// Why fused: about half of a lego step's marched samples lie behind surfaces that are already
// opaque; the two-pass form pays a lookup for each. softplus is PyTorch's (threshold 20).
// No backward: the pass only decides which samples the differentiable pass keeps, and hands it
// their v. No CUDA twin: on a GPU the Python wrapper composes the two native passes, which
// run over every sample in parallel (a loop per ray would leave most of the GPU idle).

#include "cpu_common.h"
#include "vm_lookup_cpu.h"

namespace tf {
namespace {

using namespace lookup;

// Rays per dynamically scheduled chunk: rays differ widely in how many samples they keep.
constexpr int64_t kRayChunk = 16;
// Samples of a ray looked up before their transmittance is scanned.
constexpr int64_t kBlock = 16;

template <typename scalar_t>
struct Intervals {
  const scalar_t *xyz, *t0, *t1;
  const int64_t* offsets;
};

template <typename scalar_t>
void density_transmittance_loop(const Intervals<scalar_t>& in, int64_t n_rays, int64_t C,
                                const Factors<scalar_t>& P, const Factors<scalar_t>& L,
                                scalar_t shift, scalar_t scale, double eps, scalar_t* v,
                                scalar_t* T) {
  const scalar_t threshold = static_cast<scalar_t>(eps);  // compared in the samples' dtype
#pragma omp parallel num_threads(threads_for(n_rays * 32, 0))
  {
    const std::vector<scalar_t> zeros(C, scalar_t(0));
    std::vector<scalar_t> row(C), acc(C);
#pragma omp for schedule(dynamic, kRayChunk)
    for (int64_t r = 0; r < n_rays; ++r) {
      double depth = 0;  // optical depth in front of the current sample
      int64_t i = in.offsets[r];
      const int64_t end = in.offsets[r + 1];
      // The next ray's first rows are fetched while this one runs: within a ray the rows are
      // mostly the same few (neighbouring samples share grid nodes), so the cold misses are
      // at the start of each ray, where prefetching ahead along the ray cannot reach.
      if (r + 1 < n_rays)
        for (int64_t j = end; j < std::min(end + kPrefetch, in.offsets[r + 2]); ++j)
          prefetch_point(vm_taps(in.xyz + 3 * j, P, L, C), P, L, C);
      // Blocks of samples: first their lookups, then their densities, then the scan. The
      // transcendental functions then run on independent values (one chain per sample would
      // stall on every exp), at the cost of at most kBlock - 1 lookups past the opaque point.
      bool opaque = false;
      while (i < end && !opaque) {
        const int64_t m = std::min(kBlock, end - i);
        scalar_t o[kBlock];
        for (int64_t k = 0; k < m; ++k) {
          if (i + k + kPrefetch < end)
            prefetch_point(vm_taps(in.xyz + 3 * (i + k + kPrefetch), P, L, C), P, L, C);
          v[i + k] = summed_value(vm_taps(in.xyz + 3 * (i + k), P, L, C), P, L, zeros.data(), C,
                                  row.data(), acc.data());
        }
        for (int64_t k = 0; k < m; ++k)
          o[k] = softplus(v[i + k] + shift) * scale * (in.t1[i + k] - in.t0[i + k]);
        const int64_t k = scan_transmittance(o, m, threshold, depth, T + i);
        opaque = k < m;
        i += k;
      }
      for (; i < end; ++i) v[i] = T[i] = 0;
    }
  }
}

}  // namespace

std::vector<at::Tensor> vm_density_transmittance_cpu(
    const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
    const std::vector<at::Tensor>& lines, const at::Tensor& t_starts, const at::Tensor& t_ends,
    const at::Tensor& ray_indices, int64_t n_rays, double shift, double scale, double eps) {
  const int64_t s = xyz.size(0), C = planes[0].size(1);
  auto v = at::zeros({s}, xyz.options()), T = at::zeros({s}, xyz.options());
  if (s == 0) return {v, T};
  const auto offsets = ray_offsets(ray_indices.data_ptr<int64_t>(), s, n_rays);
  const auto pcl = channel_last(planes), lcl = channel_last(lines);
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "vm_density_transmittance_cpu", [&] {
    const Intervals<scalar_t> in{xyz.data_ptr<scalar_t>(), t_starts.data_ptr<scalar_t>(),
                                 t_ends.data_ptr<scalar_t>(), offsets.data()};
    density_transmittance_loop<scalar_t>(
        in, n_rays, C, factors_of<scalar_t>(pcl, planes), factors_of<scalar_t>(lcl, lines),
        static_cast<scalar_t>(shift), static_cast<scalar_t>(scale), eps, v.data_ptr<scalar_t>(),
        T.data_ptr<scalar_t>());
  });
  return {v, T};
}

}  // namespace tf
