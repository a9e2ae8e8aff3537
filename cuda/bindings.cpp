// Python bindings of the native core: checks arguments once, then dispatches on the device.
// CUDA implementations are compiled in only when TF_WITH_CUDA is defined (the loader defines
// it when it also compiles the .cu files).

#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "covering_job.h"
#include "raster.h"

namespace tf {

// The ops each device implements (sources vm_interp, march, composite, occupancy, local_cp,
// covering, encoding).
#define TF_DECLARE_OPS(dev)                                                                     \
  at::Tensor vm_interp_fwd_##dev(const at::Tensor& xyz, const std::vector<at::Tensor>& planes,  \
                                 const std::vector<at::Tensor>& lines, bool summed);          \
  std::vector<at::Tensor> vm_interp_bwd_##dev(                                                  \
      const at::Tensor& grad_out, const at::Tensor& xyz, const std::vector<at::Tensor>& planes, \
      const std::vector<at::Tensor>& lines);                                                    \
  at::Tensor cp_interp_fwd_##dev(const at::Tensor& xyz, const std::vector<at::Tensor>& lines);  \
  std::vector<at::Tensor> cp_interp_bwd_##dev(const at::Tensor& grad_out, const at::Tensor& xyz, \
                                              const std::vector<at::Tensor>& lines);            \
  std::vector<at::Tensor> ray_aabb_intersect_##dev(const at::Tensor& origins,                   \
                                                   const at::Tensor& directions,                \
                                                   const at::Tensor& aabb, double near,         \
                                                   double far);                                 \
  std::vector<at::Tensor> march_rays_##dev(                                                     \
      const at::Tensor& origins, const at::Tensor& directions, const at::Tensor& t_min,         \
      const at::Tensor& t_max, double step_size, const at::Tensor& offsets,                     \
      const at::Tensor& bits, at::IntArrayRef resolution, const at::Tensor& aabb,               \
      int64_t max_samples);                                                                     \
  std::vector<at::Tensor> render_transmittance_fwd_##dev(                                       \
      const at::Tensor& sigmas, const at::Tensor& t_starts, const at::Tensor& t_ends,           \
      const at::Tensor& ray_indices, int64_t n_rays, double eps);                               \
  at::Tensor render_transmittance_bwd_##dev(                                                    \
      const at::Tensor& grad_weights, const at::Tensor& grad_transmittance,                     \
      const at::Tensor& sigmas, const at::Tensor& t_starts, const at::Tensor& t_ends,           \
      const at::Tensor& ray_indices, const at::Tensor& weights,                                 \
      const at::Tensor& transmittance, int64_t n_rays);                                         \
  at::Tensor accumulate_along_rays_fwd_##dev(const at::Tensor& weights,                         \
                                             const at::Tensor& values,                          \
                                             const at::Tensor& ray_indices, int64_t n_rays);    \
  std::vector<at::Tensor> accumulate_along_rays_bwd_##dev(                                      \
      const at::Tensor& grad_out, const at::Tensor& weights, const at::Tensor& values,          \
      const at::Tensor& ray_indices);                                                           \
  at::Tensor occupancy_bits_##dev(const at::Tensor& alpha, double threshold, int64_t kernel); \
  at::Tensor local_cp_mix_fwd_##dev(const at::Tensor& xyz, const at::Tensor& ids,               \
                                    const at::Tensor& weights, const at::Tensor& centres,       \
                                    double half_extent, const at::Tensor& lines, bool summed);  \
  at::Tensor local_cp_mix_bwd_##dev(const at::Tensor& grad_out, const at::Tensor& xyz,          \
                                    const at::Tensor& ids, const at::Tensor& weights,           \
                                    const at::Tensor& centres, double half_extent,              \
                                    const at::Tensor& lines);                                   \
  std::vector<at::Tensor> covering_tensors_##dev(                                               \
      const at::Tensor& xyz, const at::Tensor& centres, double half_extent,                     \
      const at::Tensor& aabb, at::IntArrayRef resolution, const at::Tensor& cell_slot,          \
      const at::Tensor& table, int64_t k, double eps);                                          \
  at::Tensor shading_input_fwd_##dev(const at::Tensor& features, const at::Tensor& dirs,        \
                                     int64_t feature_pe, int64_t view_pe, bool bfloat16);       \
  at::Tensor shading_input_bwd_##dev(const at::Tensor& grad_out, const at::Tensor& out,         \
                                     int64_t n_features, int64_t feature_pe, int64_t view_pe);

TF_DECLARE_OPS(cpu)

// CPU only (no CUDA twin: on a GPU the Python wrapper composes vm_interp with a matmul).
at::Tensor vm_project_fwd_cpu(const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
                              const std::vector<at::Tensor>& lines, const at::Tensor& basis);
std::vector<at::Tensor> vm_project_bwd_cpu(const at::Tensor& grad_out, const at::Tensor& xyz,
                                           const std::vector<at::Tensor>& planes,
                                           const std::vector<at::Tensor>& lines,
                                           const at::Tensor& basis);
// CPU only (on a GPU the Python wrapper composes vm_interp's summed mode and compositing).
std::vector<at::Tensor> vm_density_transmittance_cpu(
    const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
    const std::vector<at::Tensor>& lines, const at::Tensor& t_starts, const at::Tensor& t_ends,
    const at::Tensor& ray_indices, int64_t n_rays, double shift, double scale, double eps);

// CPU only (on a GPU the Python side composes covering_tensors, local_cp_mix_fwd's summed mode
// and compositing).
std::vector<at::Tensor> local_cp_density_transmittance_cpu(
    const at::Tensor& xyz, const std::vector<at::Tensor>& centres,
    const std::vector<double>& half_extents, const std::vector<at::Tensor>& aabbs,
    const std::vector<int64_t>& resolutions, const std::vector<at::Tensor>& cell_slots,
    const std::vector<at::Tensor>& tables, const std::vector<at::Tensor>& lines, int64_t k,
    double idw_eps, const at::Tensor& t_starts, const at::Tensor& t_ends,
    const at::Tensor& ray_indices, int64_t n_rays, double shift, double scale, double eps);
#ifdef TF_WITH_CUDA
TF_DECLARE_OPS(cuda)
constexpr bool kWithCuda = true;
#else
constexpr bool kWithCuda = false;
#endif

// Runs fn##_cuda for CUDA tensors (when compiled in), else fn##_cpu.
#ifdef TF_WITH_CUDA
#define TF_DISPATCH(ref, fn, ...) \
  return (ref).is_cuda() ? fn##_cuda(__VA_ARGS__) : fn##_cpu(__VA_ARGS__)
#else
#define TF_DISPATCH(ref, fn, ...) return fn##_cpu(__VA_ARGS__)
#endif

namespace {

void check_device(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_cpu() || t.is_cuda(), "native ops run on CPU or CUDA, got ", name, " on ",
              t.device());
  TORCH_CHECK(!t.is_cuda() || kWithCuda, "tensorfields_native was built without CUDA");
}

void check_float(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, name,
              " must be float32 or float64, got ", t.scalar_type());
  check_device(t, name);
}

// `t` has `ref`'s dtype and device and the given shape.
void check_like(const at::Tensor& t, const at::Tensor& ref, at::IntArrayRef shape,
                const char* name) {
  TORCH_CHECK(t.sizes() == shape, name, " must be ", shape, ", got ", t.sizes());
  TORCH_CHECK(t.scalar_type() == ref.scalar_type() && t.device() == ref.device(), name,
              " must match the dtype and device of the other inputs");
}

void check_points(const at::Tensor& xyz) {
  TORCH_CHECK(xyz.dim() == 2 && xyz.size(1) == 3, "xyz must be (n, 3), got ", xyz.sizes());
  check_float(xyz, "xyz");
}

// Each factor: (1, C, rows, cols) with the same C, dtype and device as xyz; lines have cols 1.
void check_factors(const at::Tensor& xyz, const std::vector<at::Tensor>& factors, bool line,
                   int64_t C) {
  TORCH_CHECK(factors.size() == 3, "expected 3 ", line ? "lines" : "planes");
  for (const auto& f : factors) {
    TORCH_CHECK(f.dim() == 4 && f.size(0) == 1 && f.size(1) == C && f.size(2) > 0 &&
                    f.size(3) > 0 && (!line || f.size(3) == 1),
                line ? "lines must be (1, C, L, 1)" : "planes must be (1, C, H, W)",
                " with one C, got ", f.sizes());
    TORCH_CHECK(f.scalar_type() == xyz.scalar_type() && f.device() == xyz.device(),
                "factors must match xyz's dtype and device");
  }
}

int64_t components(const std::vector<at::Tensor>& factors, const char* what) {
  TORCH_CHECK(factors.size() == 3, "expected 3 ", what, ", got ", factors.size());
  return factors[0].dim() == 4 ? factors[0].size(1) : -1;
}

at::Tensor vm_fwd(const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
                  const std::vector<at::Tensor>& lines, bool summed) {
  check_points(xyz);
  const int64_t C = components(planes, "planes");
  check_factors(xyz, planes, false, C);
  check_factors(xyz, lines, true, C);
  TF_DISPATCH(xyz, vm_interp_fwd, xyz, planes, lines, summed);
}

std::vector<at::Tensor> vm_bwd(const at::Tensor& grad_out, const at::Tensor& xyz,
                               const std::vector<at::Tensor>& planes,
                               const std::vector<at::Tensor>& lines) {
  check_points(xyz);
  const int64_t C = components(planes, "planes");
  check_factors(xyz, planes, false, C);
  check_factors(xyz, lines, true, C);
  if (grad_out.dim() == 1)  // the gradient of a summed forward
    check_like(grad_out, xyz, {xyz.size(0)}, "grad_out");
  else
    check_like(grad_out, xyz, {xyz.size(0), 3, C}, "grad_out");
  TF_DISPATCH(xyz, vm_interp_bwd, grad_out, xyz, planes, lines);
}

// basis (F, 3C) like xyz; all CPU.
int64_t check_projection(const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
                         const std::vector<at::Tensor>& lines, const at::Tensor& basis) {
  check_points(xyz);
  const int64_t C = components(planes, "planes");
  check_factors(xyz, planes, false, C);
  check_factors(xyz, lines, true, C);
  TORCH_CHECK(basis.dim() == 2, "basis must be (F, 3C), got ", basis.sizes());
  check_like(basis, xyz, {basis.size(0), 3 * C}, "basis");
  TORCH_CHECK(xyz.is_cpu(), "vm_project runs on CPU tensors (compose vm_interp with a matmul "
              "elsewhere)");
  return C;
}

at::Tensor vm_proj_fwd(const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
                       const std::vector<at::Tensor>& lines, const at::Tensor& basis) {
  check_projection(xyz, planes, lines, basis);
  return vm_project_fwd_cpu(xyz, planes, lines, basis);
}

std::vector<at::Tensor> vm_proj_bwd(const at::Tensor& grad_out, const at::Tensor& xyz,
                                    const std::vector<at::Tensor>& planes,
                                    const std::vector<at::Tensor>& lines,
                                    const at::Tensor& basis) {
  check_projection(xyz, planes, lines, basis);
  check_like(grad_out, xyz, {xyz.size(0), basis.size(0)}, "grad_out");
  return vm_project_bwd_cpu(grad_out, xyz, planes, lines, basis);
}

at::Tensor cp_fwd(const at::Tensor& xyz, const std::vector<at::Tensor>& lines) {
  check_points(xyz);
  check_factors(xyz, lines, true, components(lines, "lines"));
  TF_DISPATCH(xyz, cp_interp_fwd, xyz, lines);
}

std::vector<at::Tensor> cp_bwd(const at::Tensor& grad_out, const at::Tensor& xyz,
                               const std::vector<at::Tensor>& lines) {
  check_points(xyz);
  const int64_t C = components(lines, "lines");
  check_factors(xyz, lines, true, C);
  check_like(grad_out, xyz, {xyz.size(0), C}, "grad_out");
  TF_DISPATCH(xyz, cp_interp_bwd, grad_out, xyz, lines);
}

// origins (n, 3); directions like it; aabb 6 values of the same dtype and device.
void check_rays(const at::Tensor& origins, const at::Tensor& directions, const at::Tensor& aabb) {
  TORCH_CHECK(origins.dim() == 2 && origins.size(1) == 3, "origins must be (n, 3), got ",
              origins.sizes());
  check_float(origins, "origins");
  check_like(directions, origins, origins.sizes(), "directions");
  check_like(aabb, origins, {6}, "aabb");
}

std::vector<at::Tensor> ray_aabb(const at::Tensor& origins, const at::Tensor& directions,
                                 const at::Tensor& aabb, double near, double far) {
  check_rays(origins, directions, aabb);
  TF_DISPATCH(origins, ray_aabb_intersect, origins.contiguous(), directions.contiguous(),
              aabb.contiguous(), near, far);
}

std::vector<at::Tensor> march(const at::Tensor& origins, const at::Tensor& directions,
                              const at::Tensor& t_min, const at::Tensor& t_max, double step_size,
                              const at::Tensor& offsets, const at::Tensor& bits,
                              std::vector<int64_t> resolution, const at::Tensor& aabb,
                              int64_t max_samples) {
  check_rays(origins, directions, aabb);
  const int64_t n = origins.size(0);
  check_like(t_min, origins, {n}, "t_min");
  check_like(t_max, origins, {n}, "t_max");
  check_like(offsets, origins, {n}, "offsets");
  TORCH_CHECK(std::isfinite(step_size) && step_size > 0, "step_size must be > 0, got ",
              step_size);
  TORCH_CHECK(bits.dim() == 1 && bits.scalar_type() == at::kByte &&
                  bits.device() == origins.device(),
              "bits must be a 1-D uint8 tensor on the rays' device");
  if (bits.numel() > 0) {
    TORCH_CHECK(resolution.size() == 3 && resolution[0] > 0 && resolution[1] > 0 &&
                    resolution[2] > 0,
                "resolution must be 3 positive sizes, got ", resolution);
    const int64_t cells = resolution[0] * resolution[1] * resolution[2];
    TORCH_CHECK(bits.numel() == (cells + 7) / 8, "bits must hold ", (cells + 7) / 8,
                " bytes for a ", resolution, " grid, got ", bits.numel());
  }
  TF_DISPATCH(origins, march_rays, origins.contiguous(), directions.contiguous(),
              t_min.contiguous(), t_max.contiguous(), step_size, offsets.contiguous(),
              bits.contiguous(), resolution, aabb.contiguous(), max_samples);
}

// Per-sample values: 1-D float; int64 ray indices alike in shape and device, sorted, < n_rays.
void check_samples(const at::Tensor& x, const char* name, const at::Tensor& ray_indices,
                   int64_t n_rays) {
  TORCH_CHECK(x.dim() == 1, name, " must be 1-D, got ", x.sizes());
  check_float(x, name);
  TORCH_CHECK(ray_indices.scalar_type() == at::kLong && ray_indices.sizes() == x.sizes() &&
                  ray_indices.device() == x.device(),
              "ray_indices must be int64 of the same shape and device as ", name);
  TORCH_CHECK(n_rays >= 0, "n_rays must be >= 0, got ", n_rays);
  if (ray_indices.is_cpu() && ray_indices.numel() > 0) {  // a GPU check would need a sync
    const auto r = ray_indices.contiguous();
    const int64_t* p = r.data_ptr<int64_t>();
    const int64_t s = r.numel();
    TORCH_CHECK(p[0] >= 0 && p[s - 1] < n_rays, "ray_indices must lie in [0, n_rays)");
    TORCH_CHECK(std::is_sorted(p, p + s), "ray_indices must be sorted (packed samples)");
  }
}

// Packed intervals: sigmas, t_starts and t_ends alike.
void check_packed(const at::Tensor& sigmas, const at::Tensor& t_starts, const at::Tensor& t_ends,
                  const at::Tensor& ray_indices, int64_t n_rays) {
  check_samples(sigmas, "sigmas", ray_indices, n_rays);
  check_like(t_starts, sigmas, sigmas.sizes(), "t_starts");
  check_like(t_ends, sigmas, sigmas.sizes(), "t_ends");
}

std::vector<at::Tensor> transmittance_fwd(const at::Tensor& sigmas, const at::Tensor& t_starts,
                                          const at::Tensor& t_ends,
                                          const at::Tensor& ray_indices, int64_t n_rays,
                                          double eps) {
  check_packed(sigmas, t_starts, t_ends, ray_indices, n_rays);
  TF_DISPATCH(sigmas, render_transmittance_fwd, sigmas.contiguous(), t_starts.contiguous(),
              t_ends.contiguous(), ray_indices.contiguous(), n_rays, eps);
}

at::Tensor transmittance_bwd(const at::Tensor& grad_weights, const at::Tensor& grad_transmittance,
                             const at::Tensor& sigmas, const at::Tensor& t_starts,
                             const at::Tensor& t_ends, const at::Tensor& ray_indices,
                             const at::Tensor& weights, const at::Tensor& transmittance,
                             int64_t n_rays) {
  check_packed(sigmas, t_starts, t_ends, ray_indices, n_rays);
  check_like(grad_weights, sigmas, sigmas.sizes(), "grad_weights");
  check_like(grad_transmittance, sigmas, sigmas.sizes(), "grad_transmittance");
  check_like(weights, sigmas, sigmas.sizes(), "weights");
  check_like(transmittance, sigmas, sigmas.sizes(), "transmittance");
  TF_DISPATCH(sigmas, render_transmittance_bwd, grad_weights.contiguous(),
              grad_transmittance.contiguous(), sigmas.contiguous(), t_starts.contiguous(),
              t_ends.contiguous(), ray_indices.contiguous(), weights.contiguous(),
              transmittance.contiguous(), n_rays);
}

// The samples of a density pass that stops each ray where it turns opaque: intervals like xyz's
// points, ray_indices sorted, and its density constants.
void check_density_pass(const at::Tensor& xyz, const at::Tensor& t_starts,
                        const at::Tensor& t_ends, const at::Tensor& ray_indices, int64_t n_rays,
                        double shift, double scale, double eps) {
  check_samples(t_starts, "t_starts", ray_indices, n_rays);
  check_like(t_starts, xyz, {xyz.size(0)}, "t_starts");
  check_like(t_ends, xyz, {xyz.size(0)}, "t_ends");
  TORCH_CHECK(std::isfinite(shift) && std::isfinite(scale) && scale >= 0 && eps >= 0,
              "shift and scale must be finite, scale and eps >= 0; got ", shift, ", ", scale,
              ", ", eps);
}

// The VM density pass that stops each ray where it turns opaque (CPU only).
std::vector<at::Tensor> vm_transmittance(const at::Tensor& xyz,
                                         const std::vector<at::Tensor>& planes,
                                         const std::vector<at::Tensor>& lines,
                                         const at::Tensor& t_starts, const at::Tensor& t_ends,
                                         const at::Tensor& ray_indices, int64_t n_rays,
                                         double shift, double scale, double eps) {
  check_points(xyz);
  const int64_t C = components(planes, "planes");
  check_factors(xyz, planes, false, C);
  check_factors(xyz, lines, true, C);
  check_density_pass(xyz, t_starts, t_ends, ray_indices, n_rays, shift, scale, eps);
  TORCH_CHECK(xyz.is_cpu(), "vm_density_transmittance runs on CPU tensors (compose "
              "vm_interp_fwd(summed=True) with render_transmittance_fwd elsewhere)");
  return vm_density_transmittance_cpu(xyz.contiguous(), planes, lines, t_starts.contiguous(),
                                      t_ends.contiguous(), ray_indices.contiguous(), n_rays,
                                      shift, scale, eps);
}

// values: (s, C) like the weights, or a 1-D placeholder (accumulate the weights alone).
void check_values(const at::Tensor& values, const at::Tensor& weights) {
  if (values.dim() == 1 && values.numel() == 0) return;
  TORCH_CHECK(values.dim() == 2 && values.size(0) == weights.size(0),
              "values must be (s, C) with s = len(weights), got ", values.sizes());
  check_like(values, weights, values.sizes(), "values");
}

at::Tensor accumulate_fwd(const at::Tensor& weights, const at::Tensor& values,
                          const at::Tensor& ray_indices, int64_t n_rays) {
  check_samples(weights, "weights", ray_indices, n_rays);
  check_values(values, weights);
  TF_DISPATCH(weights, accumulate_along_rays_fwd, weights.contiguous(), values.contiguous(),
              ray_indices.contiguous(), n_rays);
}

std::vector<at::Tensor> accumulate_bwd(const at::Tensor& grad_out, const at::Tensor& weights,
                                       const at::Tensor& values, const at::Tensor& ray_indices,
                                       int64_t n_rays) {
  check_samples(weights, "weights", ray_indices, n_rays);
  check_values(values, weights);
  const int64_t C = values.dim() == 2 ? values.size(1) : 1;
  check_like(grad_out, weights, {n_rays, C}, "grad_out");
  TF_DISPATCH(weights, accumulate_along_rays_bwd, grad_out.contiguous(), weights.contiguous(),
              values.contiguous(), ray_indices.contiguous());
}

at::Tensor occupancy(const at::Tensor& alpha, double threshold, int64_t kernel) {
  TORCH_CHECK(alpha.dim() == 3, "alpha must be (X, Y, Z), got ", alpha.sizes());
  check_float(alpha, "alpha");
  TORCH_CHECK(kernel >= 1 && kernel % 2 == 1, "kernel must be odd and >= 1, got ", kernel);
  TF_DISPATCH(alpha, occupancy_bits, alpha.contiguous(), threshold, kernel);
}

// xyz (n, 3); ids int64 (n, k) and weights (n, k); centres (m, 3); lines (3, m, l >= 2, r).
void check_local_cp(const at::Tensor& xyz, const at::Tensor& ids, const at::Tensor& weights,
                    const at::Tensor& centres, double half_extent, const at::Tensor& lines) {
  check_points(xyz);
  TORCH_CHECK(ids.dim() == 2 && ids.size(0) == xyz.size(0) && ids.scalar_type() == at::kLong &&
                  ids.device() == xyz.device(),
              "ids must be int64 (n, k) on xyz's device, got ", ids.sizes());
  check_like(weights, xyz, ids.sizes(), "weights");
  TORCH_CHECK(centres.dim() == 2 && centres.size(1) == 3, "centres must be (m, 3), got ",
              centres.sizes());
  check_like(centres, xyz, centres.sizes(), "centres");
  TORCH_CHECK(lines.dim() == 4 && lines.size(0) == 3 && lines.size(1) == centres.size(0) &&
                  lines.size(2) >= 2,
              "lines must be (3, m, l >= 2, r) with m = len(centres), got ", lines.sizes());
  check_like(lines, xyz, lines.sizes(), "lines");
  TORCH_CHECK(std::isfinite(half_extent) && half_extent > 0, "half_extent must be > 0, got ",
              half_extent);
  if (ids.is_cpu() && ids.numel() > 0) {  // a GPU check would need a sync
    TORCH_CHECK(ids.max().item<int64_t>() < centres.size(0) && ids.min().item<int64_t>() >= -1,
                "ids must lie in [-1, m)");
  }
}

at::Tensor local_cp_fwd(const at::Tensor& xyz, const at::Tensor& ids, const at::Tensor& weights,
                        const at::Tensor& centres, double half_extent, const at::Tensor& lines,
                        bool summed) {
  check_local_cp(xyz, ids, weights, centres, half_extent, lines);
  TF_DISPATCH(xyz, local_cp_mix_fwd, xyz.contiguous(), ids.contiguous(), weights.contiguous(),
              centres.contiguous(), half_extent, lines.contiguous(), summed);
}

at::Tensor local_cp_bwd(const at::Tensor& grad_out, const at::Tensor& xyz, const at::Tensor& ids,
                        const at::Tensor& weights, const at::Tensor& centres, double half_extent,
                        const at::Tensor& lines) {
  check_local_cp(xyz, ids, weights, centres, half_extent, lines);
  if (grad_out.dim() == 1)  // the gradient of a summed forward
    check_like(grad_out, xyz, {xyz.size(0)}, "grad_out");
  else
    check_like(grad_out, xyz, {xyz.size(0), lines.size(3)}, "grad_out");
  TF_DISPATCH(xyz, local_cp_mix_bwd, grad_out.contiguous(), xyz.contiguous(), ids.contiguous(),
              weights.contiguous(), centres.contiguous(), half_extent, lines.contiguous());
}

// xyz (n, 3) and centres (m, 3) of one float dtype; the index: aabb (6) of that dtype, its
// resolution, cell_slot int64 (cells) and table int64 (slots, c), on xyz's device.
void check_covering(const at::Tensor& xyz, const at::Tensor& centres, double half_extent,
                    const at::Tensor& aabb, const std::vector<int64_t>& resolution,
                    const at::Tensor& cell_slot, const at::Tensor& table, int64_t k) {
  check_points(xyz);
  TORCH_CHECK(centres.dim() == 2 && centres.size(1) == 3, "centres must be (m, 3), got ",
              centres.sizes());
  check_like(centres, xyz, centres.sizes(), "centres");
  check_like(aabb, xyz, {6}, "aabb");
  TORCH_CHECK(std::isfinite(half_extent) && half_extent > 0, "half_extent must be > 0, got ",
              half_extent);
  TORCH_CHECK(k >= 1 && k <= kMaxCovering, "k must lie in [1, ", kMaxCovering, "], got ", k);
  TORCH_CHECK(resolution.size() == 3 && *std::min_element(resolution.begin(), resolution.end()) > 0,
              "resolution must be 3 sizes > 0");
  const int64_t cells = resolution[0] * resolution[1] * resolution[2];
  TORCH_CHECK(cell_slot.dim() == 1 && cell_slot.size(0) == cells &&
                  cell_slot.scalar_type() == at::kLong && cell_slot.device() == xyz.device(),
              "cell_slot must be int64 (", cells, ") on xyz's device, got ", cell_slot.sizes());
  TORCH_CHECK(table.dim() == 2 && table.scalar_type() == at::kLong &&
                  table.device() == xyz.device(),
              "table must be int64 (slots, c) on xyz's device, got ", table.sizes());
  if (xyz.is_cpu()) {  // a GPU check would need a sync
    if (cell_slot.numel() > 0)
      TORCH_CHECK(cell_slot.max().item<int64_t>() < table.size(0) &&
                      cell_slot.min().item<int64_t>() >= -1,
                  "cell_slot must lie in [-1, slots)");
    if (table.numel() > 0)
      TORCH_CHECK(table.max().item<int64_t>() < centres.size(0) &&
                      table.min().item<int64_t>() >= -1,
                  "table ids must lie in [-1, m)");
  }
}

std::vector<at::Tensor> covering(const at::Tensor& xyz, const at::Tensor& centres,
                                 double half_extent, const at::Tensor& aabb,
                                 std::vector<int64_t> resolution, const at::Tensor& cell_slot,
                                 const at::Tensor& table, int64_t k, double eps) {
  check_covering(xyz, centres, half_extent, aabb, resolution, cell_slot, table, k);
  TF_DISPATCH(xyz, covering_tensors, xyz.contiguous(), centres.contiguous(), half_extent,
              aabb.contiguous(), resolution, cell_slot.contiguous(), table.contiguous(), k, eps);
}

// Strivec's density pass that stops each ray where it turns opaque (CPU only): per scale the
// covering index (as `covering`) and the density lines (3, m, l >= 2, r).
std::vector<at::Tensor> local_cp_transmittance(
    const at::Tensor& xyz, const std::vector<at::Tensor>& centres,
    const std::vector<double>& half_extents, const std::vector<at::Tensor>& aabbs,
    const std::vector<int64_t>& resolutions, const std::vector<at::Tensor>& cell_slots,
    const std::vector<at::Tensor>& tables, const std::vector<at::Tensor>& lines, int64_t k,
    double idw_eps, const at::Tensor& t_starts, const at::Tensor& t_ends,
    const at::Tensor& ray_indices, int64_t n_rays, double shift, double scale, double eps) {
  const size_t n = centres.size();
  TORCH_CHECK(n >= 1 && half_extents.size() == n && aabbs.size() == n &&
                  resolutions.size() == 3 * n && cell_slots.size() == n && tables.size() == n &&
                  lines.size() == n,
              "need one centres, half_extent, aabb, 3 resolution sizes, cell_slot, table and "
              "lines per scale");
  std::vector<at::Tensor> centres_c, aabbs_c, slots_c, tables_c, lines_c;
  for (size_t level = 0; level < n; ++level) {
    const std::vector<int64_t> resolution(resolutions.begin() + 3 * level,
                                          resolutions.begin() + 3 * level + 3);
    check_covering(xyz, centres[level], half_extents[level], aabbs[level], resolution,
                   cell_slots[level], tables[level], k);
    const at::Tensor& l = lines[level];
    TORCH_CHECK(l.dim() == 4 && l.size(0) == 3 && l.size(1) == centres[level].size(0) &&
                    l.size(2) >= 2,
                "lines must be (3, m, l >= 2, r) with m = len(centres), got ", l.sizes());
    check_like(l, xyz, l.sizes(), "lines");
    centres_c.push_back(centres[level].contiguous());
    aabbs_c.push_back(aabbs[level].contiguous());
    slots_c.push_back(cell_slots[level].contiguous());
    tables_c.push_back(tables[level].contiguous());
    lines_c.push_back(l.contiguous());
  }
  check_density_pass(xyz, t_starts, t_ends, ray_indices, n_rays, shift, scale, eps);
  TORCH_CHECK(xyz.is_cpu(), "local_cp_density_transmittance runs on CPU tensors (compose "
              "covering_tensors, local_cp_mix_fwd(summed=True) and render_transmittance_fwd "
              "elsewhere)");
  return local_cp_density_transmittance_cpu(
      xyz.contiguous(), centres_c, half_extents, aabbs_c, resolutions, slots_c, tables_c,
      lines_c, k, idw_eps, t_starts.contiguous(), t_ends.contiguous(), ray_indices.contiguous(),
      n_rays, shift, scale, eps);
}

// features (n, F) and dirs (n, 3) of one float dtype; bands >= 0.
void check_encoding(const at::Tensor& features, const at::Tensor& dirs, int64_t feature_pe,
                    int64_t view_pe) {
  TORCH_CHECK(features.dim() == 2, "features must be (n, F), got ", features.sizes());
  check_float(features, "features");
  check_like(dirs, features, {features.size(0), 3}, "view_dirs");
  TORCH_CHECK(feature_pe >= 0 && view_pe >= 0 && feature_pe <= 16 && view_pe <= 16,
              "frequency bands must lie in [0, 16], got ", feature_pe, " and ", view_pe);
}

at::Tensor encoding_fwd(const at::Tensor& features, const at::Tensor& dirs, int64_t feature_pe,
                        int64_t view_pe, bool bfloat16) {
  check_encoding(features, dirs, feature_pe, view_pe);
  TORCH_CHECK(!bfloat16 || (features.scalar_type() == at::kFloat && features.is_cpu()),
              "a bfloat16 shading input needs float32 CPU features");
  TF_DISPATCH(features, shading_input_fwd, features.contiguous(), dirs.contiguous(), feature_pe,
              view_pe, bfloat16);
}

// grad_out and out (n, D) with D the row width of n_features features and the bands.
at::Tensor encoding_bwd(const at::Tensor& grad_out, const at::Tensor& out, int64_t n_features,
                        int64_t feature_pe, int64_t view_pe) {
  TORCH_CHECK(out.dim() == 2, "out must be (n, D), got ", out.sizes());
  if (out.scalar_type() == at::kBFloat16) {  // from a bfloat16 forward (CPU only)
    TORCH_CHECK(out.is_cpu(), "a bfloat16 shading input is CPU only");
  } else {
    check_float(out, "out");
  }
  TORCH_CHECK(n_features >= 0 && feature_pe >= 0 && view_pe >= 0, "sizes must be >= 0");
  const int64_t width = n_features + 3 + 2 * feature_pe * n_features + 6 * view_pe;
  TORCH_CHECK(out.size(1) == width, "out must have ", width, " columns, got ", out.size(1));
  check_like(grad_out, out, out.sizes(), "grad_out");
  TF_DISPATCH(out, shading_input_bwd, grad_out.contiguous(), out.contiguous(), n_features,
              feature_pe, view_pe);
}

// means2d (n, 2), conics (n, 3), colors (n, C), opacities (n), background (C) or empty, all CPU
// and one float dtype; ids int64 (isects) in [0, n); offsets int64 (tiles + 1), nondecreasing.
void check_raster(const at::Tensor& means2d, const at::Tensor& conics, const at::Tensor& colors,
                  const at::Tensor& opacities, const at::Tensor& background, int64_t width,
                  int64_t height, int64_t tile_size, const at::Tensor& ids,
                  const at::Tensor& offsets) {
  TORCH_CHECK(colors.dim() == 2, "colors must be (n, C), got ", colors.sizes());
  check_float(colors, "colors");
  TORCH_CHECK(colors.is_cpu(), "the native rasterizer runs on CPU tensors (gsplat serves CUDA)");
  const int64_t n = colors.size(0);
  check_like(means2d, colors, {n, 2}, "means2d");
  check_like(conics, colors, {n, 3}, "conics");
  check_like(opacities, colors, {n}, "opacities");
  if (background.numel()) check_like(background, colors, {colors.size(1)}, "background");
  TORCH_CHECK(width > 0 && height > 0 && tile_size > 0,
              "width, height and tile_size must be > 0");
  const int64_t tiles_x = (width + tile_size - 1) / tile_size;
  const int64_t tiles = tiles_x * ((height + tile_size - 1) / tile_size);
  TORCH_CHECK(offsets.dim() == 1 && offsets.size(0) == tiles + 1 &&
                  offsets.scalar_type() == at::kLong && offsets.is_cpu(),
              "offsets must be int64 (", tiles + 1, ") on the CPU, got ", offsets.sizes());
  TORCH_CHECK(ids.dim() == 1 && ids.scalar_type() == at::kLong && ids.is_cpu(),
              "gaussian_ids must be a 1-D int64 CPU tensor");
  TORCH_CHECK(offsets[0].item<int64_t>() == 0 &&
                  offsets[tiles].item<int64_t>() == ids.size(0) &&
                  (tiles == 0 || (offsets.diff() >= 0).all().item<bool>()),
              "offsets must rise from 0 to len(gaussian_ids)");
  if (ids.numel() > 0)
    TORCH_CHECK(ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < n,
                "gaussian_ids must lie in [0, n)");
}

std::vector<at::Tensor> raster_fwd(const at::Tensor& means2d, const at::Tensor& conics,
                                   const at::Tensor& colors, const at::Tensor& opacities,
                                   const at::Tensor& background, int64_t width, int64_t height,
                                   int64_t tile_size, const at::Tensor& ids,
                                   const at::Tensor& offsets) {
  check_raster(means2d, conics, colors, opacities, background, width, height, tile_size, ids,
               offsets);
  return rasterize_fwd_cpu(means2d.contiguous(), conics.contiguous(), colors.contiguous(),
                           opacities.contiguous(), background.contiguous(), width, height,
                           tile_size, ids.contiguous(), offsets.contiguous());
}

std::vector<at::Tensor> raster_bwd(const at::Tensor& grad_render, const at::Tensor& grad_alpha,
                                   const at::Tensor& means2d, const at::Tensor& conics,
                                   const at::Tensor& colors, const at::Tensor& opacities,
                                   const at::Tensor& background, int64_t width, int64_t height,
                                   int64_t tile_size, const at::Tensor& ids,
                                   const at::Tensor& offsets) {
  check_raster(means2d, conics, colors, opacities, background, width, height, tile_size, ids,
               offsets);
  check_like(grad_render, colors, {height, width, colors.size(1)}, "grad_render");
  check_like(grad_alpha, colors, {height, width}, "grad_alpha");
  return rasterize_bwd_cpu(grad_render.contiguous(), grad_alpha.contiguous(),
                           means2d.contiguous(), conics.contiguous(), colors.contiguous(),
                           opacities.contiguous(), background.contiguous(), width, height,
                           tile_size, ids.contiguous(), offsets.contiguous());
}

}  // namespace
}  // namespace tf

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "tensorfields native core (see tensorfields/core/native.py)";
  m.attr("with_cuda") = tf::kWithCuda;
  m.def("vm_interp_fwd", &tf::vm_fwd, "VM lookups (n, 3, C), or their sums (n,) if summed",
        py::arg("xyz"), py::arg("planes"), py::arg("lines"), py::arg("summed") = false);
  m.def("vm_interp_bwd", &tf::vm_bwd,
        "grads of the 3 planes, then the 3 lines (none for xyz); grad_out (n, 3, C) or (n,)",
        py::arg("grad_out"), py::arg("xyz"), py::arg("planes"), py::arg("lines"));
  m.def("vm_project_fwd", &tf::vm_proj_fwd,
        "VM lookups through a basis (F, 3C): (n, F) = products.flatten(1) @ basis.T; CPU",
        py::arg("xyz"), py::arg("planes"), py::arg("lines"), py::arg("basis"));
  m.def("vm_project_bwd", &tf::vm_proj_bwd,
        "grads of the 3 planes, the 3 lines and the basis (none for xyz); CPU",
        py::arg("grad_out"), py::arg("xyz"), py::arg("planes"), py::arg("lines"),
        py::arg("basis"));
  m.def("vm_density_transmittance", &tf::vm_transmittance,
        "per ray, front to back: summed VM values and the transmittance in front of each "
        "sample, sigma = softplus(v + shift) * scale; both 0 from the first sample with "
        "T < eps on (never looked up); no grad, CPU",
        py::arg("xyz"), py::arg("planes"), py::arg("lines"), py::arg("t_starts"),
        py::arg("t_ends"), py::arg("ray_indices"), py::arg("n_rays"), py::arg("shift"),
        py::arg("scale"), py::arg("eps"));
  m.def("cp_interp_fwd", &tf::cp_fwd, "CP lookups (n, C)", py::arg("xyz"), py::arg("lines"));
  m.def("cp_interp_bwd", &tf::cp_bwd, "grads of the 3 lines (none for xyz)",
        py::arg("grad_out"), py::arg("xyz"), py::arg("lines"));
  m.def("ray_aabb_intersect", &tf::ray_aabb, "(t_min, t_max) per ray", py::arg("origins"),
        py::arg("directions"), py::arg("aabb"), py::arg("near"), py::arg("far"));
  m.def("march_rays", &tf::march, "packed (ray_indices, t_starts, t_ends)", py::arg("origins"),
        py::arg("directions"), py::arg("t_min"), py::arg("t_max"), py::arg("step_size"),
        py::arg("offsets"), py::arg("bits"), py::arg("resolution"), py::arg("aabb"),
        py::arg("max_samples"));
  m.def("render_transmittance_fwd", &tf::transmittance_fwd, "(weights, transmittance)",
        py::arg("sigmas"), py::arg("t_starts"), py::arg("t_ends"), py::arg("ray_indices"),
        py::arg("n_rays"), py::arg("eps"));
  m.def("render_transmittance_bwd", &tf::transmittance_bwd, "grad of sigmas",
        py::arg("grad_weights"), py::arg("grad_transmittance"), py::arg("sigmas"),
        py::arg("t_starts"), py::arg("t_ends"), py::arg("ray_indices"), py::arg("weights"),
        py::arg("transmittance"), py::arg("n_rays"));
  m.def("accumulate_along_rays_fwd", &tf::accumulate_fwd, "per-ray sums of w * v, (n_rays, C)",
        py::arg("weights"), py::arg("values"), py::arg("ray_indices"), py::arg("n_rays"));
  m.def("accumulate_along_rays_bwd", &tf::accumulate_bwd, "grads of weights and values",
        py::arg("grad_out"), py::arg("weights"), py::arg("values"), py::arg("ray_indices"),
        py::arg("n_rays"));
  m.def("occupancy_bits", &tf::occupancy, "thresholded, dilated, packed occupancy",
        py::arg("alpha"), py::arg("threshold"), py::arg("kernel"));
  m.def("local_cp_mix_fwd", &tf::local_cp_fwd,
        "per point, the weighted sum over its k cubes of their CP products (n, r), or its sum "
        "over r (n,) if summed",
        py::arg("xyz"), py::arg("ids"), py::arg("weights"), py::arg("centres"),
        py::arg("half_extent"), py::arg("lines"), py::arg("summed") = false);
  m.def("local_cp_mix_bwd", &tf::local_cp_bwd,
        "grad of the lines (none for xyz or weights); grad_out (n, r), or (n,) after a summed "
        "forward",
        py::arg("grad_out"), py::arg("xyz"), py::arg("ids"), py::arg("weights"),
        py::arg("centres"), py::arg("half_extent"), py::arg("lines"));
  m.def("covering_tensors", &tf::covering,
        "(ids (n, k), weights (n, k)): the k nearest cubes holding each point, IDW weights",
        py::arg("xyz"), py::arg("centres"), py::arg("half_extent"), py::arg("aabb"),
        py::arg("resolution"), py::arg("cell_slot"), py::arg("table"), py::arg("k"),
        py::arg("eps"));
  m.def("local_cp_density_transmittance", &tf::local_cp_transmittance,
        "[v, T, ids per scale..., weights per scale...]: Strivec's summed density features "
        "and the transmittance, each ray stopped where T < eps (CPU)",
        py::arg("xyz"), py::arg("centres"), py::arg("half_extents"), py::arg("aabbs"),
        py::arg("resolutions"), py::arg("cell_slots"), py::arg("tables"), py::arg("lines"),
        py::arg("k"), py::arg("idw_eps"), py::arg("t_starts"), py::arg("t_ends"),
        py::arg("ray_indices"), py::arg("n_rays"), py::arg("shift"), py::arg("scale"),
        py::arg("eps"));
  m.def("shading_input_fwd", &tf::encoding_fwd,
        "shading MLP input (n, D): features, view dirs and their positional encodings; "
        "bfloat16: stored as bfloat16 (float32 CPU features)",
        py::arg("features"), py::arg("view_dirs"), py::arg("feature_pe"), py::arg("view_pe"),
        py::arg("bfloat16") = false);
  m.def("shading_input_bwd", &tf::encoding_bwd,
        "grad of the features (n, F) from the forward's output (none for the view dirs)",
        py::arg("grad_out"), py::arg("out"), py::arg("n_features"), py::arg("feature_pe"),
        py::arg("view_pe"));
  m.def("rasterize_fwd", &tf::raster_fwd, "(render (h, w, C), alpha (h, w)), CPU only",
        py::arg("means2d"), py::arg("conics"), py::arg("colors"), py::arg("opacities"),
        py::arg("background"), py::arg("width"), py::arg("height"), py::arg("tile_size"),
        py::arg("gaussian_ids"), py::arg("offsets"));
  m.def("rasterize_bwd", &tf::raster_bwd, "grads of means2d, conics, colors, opacities",
        py::arg("grad_render"), py::arg("grad_alpha"), py::arg("means2d"), py::arg("conics"),
        py::arg("colors"), py::arg("opacities"), py::arg("background"), py::arg("width"),
        py::arg("height"), py::arg("tile_size"), py::arg("gaussian_ids"), py::arg("offsets"));
}
