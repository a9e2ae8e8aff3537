// Fused VM / CP factor interpolation on CPU (OpenMP), forward and backward. VM also has a
// summed mode (one value per point: the sum over pairs and channels, i.e. a TensoRF density)
// that never writes the (n, 3, C) products; its backward takes the (n,) gradient directly.
//
// Twin of tensorfields/core/_torch_impl.py (vm_interp_torch, cp_interp_torch), which is the
// oracle: grid_sample(mode="bilinear", padding_mode="zeros", align_corners=True).
//   plane i (1, C, H, W) spans xyz axes PLANE_AXES[i] = (0,1), (0,2), (1,2): the first axis
//   indexes W, the second H; line i (1, C, L, 1) runs along LINE_AXES[i] = 2, 1, 0.
//   Node position of a coordinate x in [-1, 1]: (x + 1) / 2 * (size - 1); nodes outside the
//   grid contribute zero, so points outside [-1, 1] fade to zero within one cell.
// No gradient flows to xyz (TensoRF never needs it); the Python wrapper routes xyz that
// requires grad to the reference.
//
// Speed: the lookups are bound by memory latency (random rows of factors that exceed the
// cache), so
//  * factors are read channel-last (nodes, C): one lookup reads a few contiguous rows instead
//    of C scattered values, and the loops over C vectorise. Factors in channels_last memory
//    format are used in place; others are copied once per call;
//  * the rows of the point kPrefetch ahead are prefetched while the current one is computed;
//  * backward scatters into per-thread gradient buffers, summed afterwards: float atomics on
//    CPU are CAS loops, many times slower than the extra reduction.

#include "vm_lookup_cpu.h"

namespace tf {
namespace {

using namespace lookup;

// The loops live in templates, not in the AT_DISPATCH lambdas: GCC rejects #pragma inside
// macro arguments.
// summed: o[k] = sum over pairs and channels (a density), else o[(k, pair, c)].
template <typename scalar_t>
void vm_fwd_loop(const scalar_t* p, int64_t n, int64_t C, const Factors<scalar_t>& P,
                 const Factors<scalar_t>& L, bool summed, scalar_t* o) {
#pragma omp parallel num_threads(threads_for(n, 0))
  {
    const std::vector<scalar_t> zeros(C, scalar_t(0));
    std::vector<scalar_t> row(C), acc(C);
    const scalar_t* pr[4];
    const scalar_t* lr[4];
#pragma omp for schedule(static)
    for (int64_t k = 0; k < n; ++k) {
      if (k + kPrefetch < n) prefetch_point(vm_taps(p + 3 * (k + kPrefetch), P, L, C), P, L, C);
      const auto t = vm_taps(p + 3 * k, P, L, C);
      if (summed) {
        o[k] = summed_value(t, P, L, zeros.data(), C, row.data(), acc.data());
        continue;
      }
      for (int i = 0; i < 3; ++i) {
        rows_of(P.data[i], t.plane[i], 4, zeros.data(), pr);
        rows_of(L.data[i], t.line[i], 2, zeros.data(), lr);
        vm_pair(o + (3 * k + i) * C, pr[0], pr[1], pr[2], pr[3], lr[0], lr[1], t.plane[i].w,
                t.line[i].w, C);
      }
    }
  }
}

template <typename scalar_t>
void vm_bwd_loop(const scalar_t* g, bool summed, const scalar_t* p, int64_t n, int64_t C,
                 const Factors<scalar_t>& P, const Factors<scalar_t>& L, int T,
                 const std::vector<at::Tensor>& gp, const std::vector<at::Tensor>& gl,
                 const std::vector<at::Tensor>& planes, const std::vector<at::Tensor>& lines) {
#pragma omp parallel num_threads(T)
  {
    const auto GP = thread_slice<scalar_t>(gp, planes, omp_get_thread_num());
    const auto GL = thread_slice<scalar_t>(gl, lines, omp_get_thread_num());
    const std::vector<scalar_t> zeros(C, scalar_t(0));
    std::vector<scalar_t> g_plane(C), g_line(C), g_same(C);
    const scalar_t* pr[4];
    const scalar_t* lr[4];
#pragma omp for schedule(static)
    for (int64_t k = 0; k < n; ++k) {
      if (k + kPrefetch < n) {
        const auto ahead = vm_taps(p + 3 * (k + kPrefetch), P, L, C);
        for (int i = 0; i < 3; ++i) {
          prefetch(P.data[i], ahead.plane[i], 4, C, false);
          prefetch(GP.data[i], ahead.plane[i], 4, C, true);
        }
      }
      const auto t = vm_taps(p + 3 * k, P, L, C);
      // Summed output: every (pair, channel) of the point has the point's gradient.
      if (summed) std::fill(g_same.begin(), g_same.end(), g[k]);
      for (int i = 0; i < 3; ++i) {
        rows_of(P.data[i], t.plane[i], 4, zeros.data(), pr);
        rows_of(L.data[i], t.line[i], 2, zeros.data(), lr);
        const scalar_t* gk = summed ? g_same.data() : g + (3 * k + i) * C;
        vm_pair_grads(g_plane.data(), g_line.data(), gk, pr[0], pr[1], pr[2], pr[3], lr[0],
                      lr[1], t.plane[i].w, t.line[i].w, C);
        scatter(GP.data[i], t.plane[i], 4, g_plane.data(), C);
        scatter(GL.data[i], t.line[i], 2, g_line.data(), C);
      }
    }
  }
}

template <typename scalar_t>
void cp_fwd_loop(const scalar_t* p, int64_t n, int64_t C, const Factors<scalar_t>& L,
                 scalar_t* o) {
#pragma omp parallel num_threads(threads_for(n, 0))
  {
    const std::vector<scalar_t> zeros(C, scalar_t(0));
    std::vector<scalar_t> val(C);
    const scalar_t* lr[4];
#pragma omp for schedule(static)
    for (int64_t k = 0; k < n; ++k) {
      // Same product order as the reference: (x * y) * z.
      scalar_t* dst = o + k * C;
      for (int axis = 0; axis < 3; ++axis) {
        const auto t = line_taps(p[3 * k + axis], L.rows[axis], C);
        rows_of(L.data[axis], t, 2, zeros.data(), lr);
        line_value(axis == 0 ? dst : val.data(), lr[0], lr[1], t.w, C);
        if (axis > 0)
          for (int64_t c = 0; c < C; ++c) dst[c] *= val[c];
      }
    }
  }
}

template <typename scalar_t>
void cp_bwd_loop(const scalar_t* g, const scalar_t* p, int64_t n, int64_t C,
                 const Factors<scalar_t>& L, int T, const std::vector<at::Tensor>& gl,
                 const std::vector<at::Tensor>& lines) {
#pragma omp parallel num_threads(T)
  {
    const auto GL = thread_slice<scalar_t>(gl, lines, omp_get_thread_num());
    const std::vector<scalar_t> zeros(C, scalar_t(0));
    std::vector<scalar_t> val(3 * C), g_line(C);
    const scalar_t* lr[4];
#pragma omp for schedule(static)
    for (int64_t k = 0; k < n; ++k) {
      Taps<scalar_t> t[3];
      for (int axis = 0; axis < 3; ++axis) {
        t[axis] = line_taps(p[3 * k + axis], L.rows[axis], C);
        rows_of(L.data[axis], t[axis], 2, zeros.data(), lr);
        line_value(val.data() + axis * C, lr[0], lr[1], t[axis].w, C);
      }
      const scalar_t* gk = g + k * C;
      for (int axis = 0; axis < 3; ++axis) {
        // d out / d line[axis] is the product of the other two lookups.
        const scalar_t* o1 = val.data() + ((axis + 1) % 3) * C;
        const scalar_t* o2 = val.data() + ((axis + 2) % 3) * C;
        for (int64_t c = 0; c < C; ++c) g_line[c] = gk[c] * o1[c] * o2[c];
        scatter(GL.data[axis], t[axis], 2, g_line.data(), C);
      }
    }
  }
}

}  // namespace

at::Tensor vm_interp_fwd_cpu(const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
                             const std::vector<at::Tensor>& lines, bool summed) {
  const int64_t n = xyz.size(0), C = planes[0].size(1);
  auto out = summed ? at::zeros({n}, xyz.options()) : at::empty({n, 3, C}, xyz.options());
  if (n == 0 || C == 0) return out;  // summed: zeros
  const auto pts = xyz.contiguous();
  const auto pcl = channel_last(planes), lcl = channel_last(lines);
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "vm_interp_fwd_cpu", [&] {
    vm_fwd_loop<scalar_t>(pts.data_ptr<scalar_t>(), n, C, factors_of<scalar_t>(pcl, planes),
                          factors_of<scalar_t>(lcl, lines), summed, out.data_ptr<scalar_t>());
  });
  return out;
}

std::vector<at::Tensor> vm_interp_bwd_cpu(const at::Tensor& grad_out, const at::Tensor& xyz,
                                          const std::vector<at::Tensor>& planes,
                                          const std::vector<at::Tensor>& lines) {
  const int64_t n = xyz.size(0), C = planes[0].size(1);
  int64_t buffer_elems = 0;
  for (int i = 0; i < 3; ++i) buffer_elems += planes[i].numel() + lines[i].numel();
  const int T = threads_for(n, buffer_elems * xyz.element_size());
  const auto pcl = channel_last(planes), lcl = channel_last(lines);
  const auto gp = thread_buffers(pcl, T), gl = thread_buffers(lcl, T);
  if (n > 0 && C > 0) {
    const auto pts = xyz.contiguous();
    const auto go = grad_out.contiguous();
    AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "vm_interp_bwd_cpu", [&] {
      vm_bwd_loop<scalar_t>(go.data_ptr<scalar_t>(), grad_out.dim() == 1,
                            pts.data_ptr<scalar_t>(), n, C,
                            factors_of<scalar_t>(pcl, planes), factors_of<scalar_t>(lcl, lines),
                            T, gp, gl, planes, lines);
    });
  }
  std::vector<at::Tensor> grads;
  for (int i = 0; i < 3; ++i) grads.push_back(reduce_like(gp[i], planes[i]));
  for (int i = 0; i < 3; ++i) grads.push_back(reduce_like(gl[i], lines[i]));
  return grads;
}

at::Tensor cp_interp_fwd_cpu(const at::Tensor& xyz, const std::vector<at::Tensor>& lines) {
  const int64_t n = xyz.size(0), C = lines[0].size(1);
  auto out = at::empty({n, C}, xyz.options());  // every element is written
  if (n == 0 || C == 0) return out;
  const auto pts = xyz.contiguous();
  const auto lcl = channel_last(lines);
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "cp_interp_fwd_cpu", [&] {
    cp_fwd_loop<scalar_t>(pts.data_ptr<scalar_t>(), n, C, factors_of<scalar_t>(lcl, lines),
                          out.data_ptr<scalar_t>());
  });
  return out;
}

std::vector<at::Tensor> cp_interp_bwd_cpu(const at::Tensor& grad_out, const at::Tensor& xyz,
                                          const std::vector<at::Tensor>& lines) {
  const int64_t n = xyz.size(0), C = lines[0].size(1);
  int64_t buffer_elems = 0;
  for (int i = 0; i < 3; ++i) buffer_elems += lines[i].numel();
  const int T = threads_for(n, buffer_elems * xyz.element_size());
  const auto lcl = channel_last(lines);
  const auto gl = thread_buffers(lcl, T);
  if (n > 0 && C > 0) {
    const auto pts = xyz.contiguous();
    const auto go = grad_out.contiguous();
    AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "cp_interp_bwd_cpu", [&] {
      cp_bwd_loop<scalar_t>(go.data_ptr<scalar_t>(), pts.data_ptr<scalar_t>(), n, C,
                            factors_of<scalar_t>(lcl, lines), T, gl, lines);
    });
  }
  std::vector<at::Tensor> grads;
  for (int i = 0; i < 3; ++i) grads.push_back(reduce_like(gl[i], lines[i]));
  return grads;
}

}  // namespace tf
