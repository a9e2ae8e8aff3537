// Volume-rendering compositing on packed samples, CPU (OpenMP), forward and backward.
//
// Twin of render_transmittance_torch in tensorfields/core/_torch_impl.py (the oracle).
// Samples are packed as in nerfacc: sorted by ray, then by distance. For sample i of a ray,
//   o_i = sigma_i * (t_end_i - t_start_i),  alpha_i = 1 - exp(-o_i),
//   T_i = exp(-sum_{j<i} o_j)  (summed in double: rays can be long),  w_i = T_i * alpha_i.
// Early ray termination: from the first sample with T_i < eps on, w and T are 0 and the loop
// stops (densities are non-negative, so T never rises again).
//
// Backward (per ray, last sample first), with g = dL/dw and h = dL/dT:
//   dL/do_i = g_i * T_i * (1 - alpha_i) - sum_{k>i} (g_k * w_k + h_k * T_k),
//   dL/dsigma_i = dL/do_i * dt_i; terminated samples get 0. No gradient for the t's.
//
// Accumulation (twin of accumulate_along_rays_torch): out[r] = sum_{i in r} w_i * v_i (v = 1
// when no values are given: the opacity), one ray per task, so no atomics and a fixed order.

#include "aten_headers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu_common.h"

namespace tf {
namespace {

template <typename scalar_t>
struct Packed {
  const scalar_t *sigma, *t0, *t1;
  const int64_t* offsets;
};

template <typename scalar_t>
void fwd_loop(const Packed<scalar_t>& in, int64_t n_rays, double eps, scalar_t* w, scalar_t* T) {
  const scalar_t threshold = static_cast<scalar_t>(eps);  // compared in the samples' dtype
  at::parallel_for(0, n_rays, kRaysPerTask, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      double depth = 0;  // optical depth in front of the current sample
      int64_t i = in.offsets[r];
      const int64_t end = in.offsets[r + 1];
      for (; i < end; ++i) {
        const scalar_t trans = static_cast<scalar_t>(std::exp(-depth));
        if (trans < threshold) break;
        const scalar_t o = in.sigma[i] * (in.t1[i] - in.t0[i]);
        T[i] = trans;
        w[i] = trans * (scalar_t(1) - std::exp(-o));
        depth += static_cast<double>(o);
      }
      for (; i < end; ++i) w[i] = T[i] = 0;
    }
  });
}

template <typename scalar_t>
void bwd_loop(const Packed<scalar_t>& in, int64_t n_rays, const scalar_t* g, const scalar_t* h,
              const scalar_t* w, const scalar_t* T, scalar_t* grad) {
  at::parallel_for(0, n_rays, kRaysPerTask, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      double behind = 0;  // sum over later samples of g_k w_k + h_k T_k
      for (int64_t i = in.offsets[r + 1] - 1; i >= in.offsets[r]; --i) {
        if (T[i] == 0 && w[i] == 0) {  // terminated (or fully occluded): no influence
          grad[i] = 0;
          continue;
        }
        const scalar_t dt = in.t1[i] - in.t0[i];
        const scalar_t keep = std::exp(-in.sigma[i] * dt);  // 1 - alpha_i
        const double d_o = static_cast<double>(g[i]) * T[i] * keep - behind;
        grad[i] = static_cast<scalar_t>(d_o) * dt;
        behind += static_cast<double>(g[i]) * w[i] + static_cast<double>(h[i]) * T[i];
      }
    }
  });
}

// out (n_rays, C) = per-ray sums of w * v; v == nullptr: v = 1 (C = 1).
template <typename scalar_t>
void accumulate_loop(const scalar_t* w, const scalar_t* v, const int64_t* offsets,
                     int64_t n_rays, int64_t C, scalar_t* out) {
  at::parallel_for(0, n_rays, kRaysPerTask, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      scalar_t* row = out + r * C;
      for (int64_t c = 0; c < C; ++c) row[c] = 0;
      for (int64_t i = offsets[r]; i < offsets[r + 1]; ++i)
        for (int64_t c = 0; c < C; ++c) row[c] += w[i] * (v ? v[i * C + c] : scalar_t(1));
    }
  });
}

template <typename scalar_t>
void accumulate_bwd_loop(const scalar_t* g, const scalar_t* w, const scalar_t* v,
                         const int64_t* ray, int64_t s, int64_t C, scalar_t* grad_w,
                         scalar_t* grad_v) {
  at::parallel_for(0, s, 4096, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const scalar_t* gr = g + ray[i] * C;
      scalar_t dot = 0;
      for (int64_t c = 0; c < C; ++c) {
        dot += gr[c] * (v ? v[i * C + c] : scalar_t(1));
        if (grad_v) grad_v[i * C + c] = w[i] * gr[c];
      }
      grad_w[i] = dot;
    }
  });
}

}  // namespace

std::vector<at::Tensor> render_transmittance_fwd_cpu(const at::Tensor& sigmas,
                                                     const at::Tensor& t_starts,
                                                     const at::Tensor& t_ends,
                                                     const at::Tensor& ray_indices,
                                                     int64_t n_rays, double eps) {
  const int64_t s = sigmas.numel();
  auto w = at::empty_like(sigmas), T = at::empty_like(sigmas);
  if (s == 0) return {w, T};
  const auto offsets = ray_offsets(ray_indices.data_ptr<int64_t>(), s, n_rays);
  AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "render_transmittance_fwd_cpu", [&] {
    const Packed<scalar_t> in{sigmas.data_ptr<scalar_t>(), t_starts.data_ptr<scalar_t>(),
                              t_ends.data_ptr<scalar_t>(), offsets.data()};
    fwd_loop<scalar_t>(in, n_rays, eps, w.data_ptr<scalar_t>(), T.data_ptr<scalar_t>());
  });
  return {w, T};
}

at::Tensor render_transmittance_bwd_cpu(const at::Tensor& grad_weights,
                                        const at::Tensor& grad_transmittance,
                                        const at::Tensor& sigmas, const at::Tensor& t_starts,
                                        const at::Tensor& t_ends, const at::Tensor& ray_indices,
                                        const at::Tensor& weights,
                                        const at::Tensor& transmittance, int64_t n_rays) {
  const int64_t s = sigmas.numel();
  auto grad = at::empty_like(sigmas);
  if (s == 0) return grad;
  const auto offsets = ray_offsets(ray_indices.data_ptr<int64_t>(), s, n_rays);
  AT_DISPATCH_FLOATING_TYPES(sigmas.scalar_type(), "render_transmittance_bwd_cpu", [&] {
    const Packed<scalar_t> in{sigmas.data_ptr<scalar_t>(), t_starts.data_ptr<scalar_t>(),
                              t_ends.data_ptr<scalar_t>(), offsets.data()};
    bwd_loop<scalar_t>(in, n_rays, grad_weights.data_ptr<scalar_t>(),
                       grad_transmittance.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
                       transmittance.data_ptr<scalar_t>(), grad.data_ptr<scalar_t>());
  });
  return grad;
}

at::Tensor accumulate_along_rays_fwd_cpu(const at::Tensor& weights, const at::Tensor& values,
                                         const at::Tensor& ray_indices, int64_t n_rays) {
  const bool has_values = values.dim() == 2;  // else a 1-D placeholder: weights alone
  const int64_t s = weights.numel(), C = has_values ? values.size(1) : 1;
  auto out = at::zeros({n_rays, C}, weights.options());
  if (s == 0 || n_rays == 0) return out;
  const auto offsets = ray_offsets(ray_indices.data_ptr<int64_t>(), s, n_rays);
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "accumulate_along_rays_fwd_cpu", [&] {
    accumulate_loop<scalar_t>(weights.data_ptr<scalar_t>(),
                              has_values ? values.data_ptr<scalar_t>() : nullptr,
                              offsets.data(), n_rays, C, out.data_ptr<scalar_t>());
  });
  return out;
}

std::vector<at::Tensor> accumulate_along_rays_bwd_cpu(const at::Tensor& grad_out,
                                                      const at::Tensor& weights,
                                                      const at::Tensor& values,
                                                      const at::Tensor& ray_indices) {
  const int64_t s = weights.numel(), C = grad_out.size(1);
  auto grad_w = at::empty_like(weights);
  const bool has_values = values.dim() == 2;
  auto grad_v = has_values ? at::empty_like(values) : at::empty({0}, values.options());
  if (s == 0) return {grad_w, grad_v};
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "accumulate_along_rays_bwd_cpu", [&] {
    accumulate_bwd_loop<scalar_t>(
        grad_out.data_ptr<scalar_t>(), weights.data_ptr<scalar_t>(),
        has_values ? values.data_ptr<scalar_t>() : nullptr,
        ray_indices.data_ptr<int64_t>(), s, C, grad_w.data_ptr<scalar_t>(),
        has_values ? grad_v.data_ptr<scalar_t>() : nullptr);
  });
  return {grad_w, grad_v};
}

}  // namespace tf
