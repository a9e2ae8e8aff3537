// VM lookups projected by a basis matrix on CPU (OpenMP), forward and backward:
//   out (n, F) = vm_interp(xyz, planes, lines).flatten(1) @ basis.T,   basis (F, 3C)
// which is TensoRF's appearance feature (the VM products through its basis_mat). Twin of
// vm_project_torch in tensorfields/core/_torch_impl.py; conventions as in vm_interp.cpp.
//
// Why fused: the (n, 3C) products are a thin matrix (3C = 144, F = 27) that oneDNN multiplies
// at a fraction of its speed, and writing them, reading them back and taking their gradient
// costs as much as the lookups. Here each point's products stay in L1: the forward adds them
// into F outputs, the backward turns the point's F gradients into 3C product gradients (and
// adds its share of the basis gradient into a per-thread (F, 3C) buffer) before scattering.
// There is no CUDA twin: on a GPU the products go through cuBLAS (the Python wrapper composes
// vm_interp with a matmul there).

#include <cstring>

#include "vm_lookup_cpu.h"

// Fused multiply-adds here (the build turns contraction off so that other ops round like
// their PyTorch twins; this one's twin is a BLAS product, which contracts too).
#pragma GCC optimize("fp-contract=fast")

namespace tf {
namespace {

using namespace lookup;

// Matrix widths are padded to whole chunks of kLanes values: the chunk loops then have a
// constant trip count and compile to one vector operation each, with the partial sums in
// registers (the short runtime-length loops of a plain axpy cost more than their arithmetic).
constexpr int64_t kLanes = 16;

inline int64_t padded(int64_t width) { return (width + kLanes - 1) / kLanes * kLanes; }

// Plane values (3, C), line values (3, C) and their products (3C) of one point.
template <typename scalar_t>
inline void pair_values(const VMTaps<scalar_t>& t, const Factors<scalar_t>& P,
                        const Factors<scalar_t>& L, const scalar_t* zeros, int64_t C,
                        scalar_t* pv, scalar_t* lv, scalar_t* row) {
  const scalar_t* pr[4];
  const scalar_t* lr[4];
  for (int i = 0; i < 3; ++i) {
    rows_of(P.data[i], t.plane[i], 4, zeros, pr);
    rows_of(L.data[i], t.line[i], 2, zeros, lr);
    plane_value(pv + i * C, pr, t.plane[i].w, C);
    line_value(lv + i * C, lr[0], lr[1], t.line[i].w, C);
  }
  for (int64_t j = 0; j < 3 * C; ++j) row[j] = pv[j] * lv[j];
}

// A vector of scalar_t (GCC / Clang vector extensions) with unaligned loads and stores:
// 64 bytes (one register) where the build has AVX-512, else 32 (one AVX2 register, two NEON
// ones). A 64-byte vector on an AVX2 build made the fused forward four times slower.
#ifdef __AVX512F__
constexpr int kVectorBytes = 64;
#else
constexpr int kVectorBytes = 32;
#endif

template <typename scalar_t>
struct Simd {
  typedef scalar_t vec __attribute__((vector_size(kVectorBytes)));
  static constexpr int64_t kWidth = kVectorBytes / sizeof(scalar_t);
  static vec load(const scalar_t* p) {
    vec v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static void store(scalar_t* p, vec v) { std::memcpy(p, &v, sizeof v); }
};
static_assert(kLanes % Simd<double>::kWidth == 0 && kLanes % Simd<float>::kWidth == 0);

// out (kChunks vectors) = sum_r x[r] * m[r, :] for a block of kChunks vectors of columns of a
// (rows, cols) matrix. All the block's partial sums stay in registers, two per vector (even and
// odd rows), so each x[r] is broadcast once per block and enough independent sums are in flight
// to hide the latency of the multiply-adds.
template <typename scalar_t, int kChunks>
inline void vec_mat_block(const scalar_t* __restrict__ x, int64_t rows,
                          const scalar_t* __restrict__ m, int64_t cols,
                          scalar_t* __restrict__ out) {
  using S = Simd<scalar_t>;
  typename S::vec a[kChunks] = {}, b[kChunks] = {};
  int64_t r = 0;
  for (; r + 1 < rows; r += 2) {
    const scalar_t x0 = x[r], x1 = x[r + 1];
    const scalar_t* m0 = m + r * cols;
    const scalar_t* m1 = m0 + cols;
    for (int j = 0; j < kChunks; ++j) {
      a[j] += x0 * S::load(m0 + j * S::kWidth);
      b[j] += x1 * S::load(m1 + j * S::kWidth);
    }
  }
  if (r < rows)
    for (int j = 0; j < kChunks; ++j) a[j] += x[r] * S::load(m + r * cols + j * S::kWidth);
  for (int j = 0; j < kChunks; ++j) S::store(out + j * S::kWidth, a[j] + b[j]);
}

// out (cols) = sum_r x[r] * m[r, :] for a (rows, cols) matrix m, cols a multiple of kLanes:
// blocks of up to 4 vectors of columns.
template <typename scalar_t>
inline void vec_mat(const scalar_t* __restrict__ x, int64_t rows, const scalar_t* __restrict__ m,
                    int64_t cols, scalar_t* __restrict__ out) {
  constexpr int64_t W = Simd<scalar_t>::kWidth;
  int64_t c0 = 0;
  for (; c0 + 4 * W <= cols; c0 += 4 * W) vec_mat_block<scalar_t, 4>(x, rows, m + c0, cols, out + c0);
  switch ((cols - c0) / W) {
    case 3:
      vec_mat_block<scalar_t, 3>(x, rows, m + c0, cols, out + c0);
      break;
    case 2:
      vec_mat_block<scalar_t, 2>(x, rows, m + c0, cols, out + c0);
      break;
    case 1:
      vec_mat_block<scalar_t, 1>(x, rows, m + c0, cols, out + c0);
      break;
    default:
      break;
  }
}

// m (rows, cols) += sum_q outer(x_q, y_q) over a group of kGroup points (x_q rows apart in x,
// y_q cols apart in y); cols a multiple of kLanes. Grouping loads and stores each value of m
// once per group instead of once per point.
constexpr int kGroup = 4;

template <typename scalar_t>
inline void add_outer_group(scalar_t* __restrict__ m, const scalar_t* __restrict__ x,
                            int64_t rows, const scalar_t* __restrict__ y, int64_t cols) {
  using S = Simd<scalar_t>;
  for (int64_t r = 0; r < rows; ++r) {
    const scalar_t x0 = x[r], x1 = x[rows + r], x2 = x[2 * rows + r], x3 = x[3 * rows + r];
    scalar_t* mr = m + r * cols;
    for (int64_t c0 = 0; c0 < cols; c0 += S::kWidth) {
      const typename S::vec a = x0 * S::load(y + c0) + x1 * S::load(y + cols + c0);
      const typename S::vec b = x2 * S::load(y + 2 * cols + c0) + x3 * S::load(y + 3 * cols + c0);
      S::store(mr + c0, S::load(mr + c0) + (a + b));
    }
  }
}

// bt: the basis transposed, (K, Fp) with zero-padded columns (K = 3C products, F outputs).
template <typename scalar_t>
void project_fwd_loop(const scalar_t* p, int64_t n, int64_t C, const Factors<scalar_t>& P,
                      const Factors<scalar_t>& L, const scalar_t* bt, int64_t F, int64_t Fp,
                      scalar_t* o) {
  const int64_t K = 3 * C;
#pragma omp parallel num_threads(threads_for(n, 0))
  {
    const std::vector<scalar_t> zeros(C, scalar_t(0));
    std::vector<scalar_t> pv(K), lv(K), row(K), acc(Fp);
#pragma omp for schedule(static)
    for (int64_t k = 0; k < n; ++k) {
      if (k + kPrefetch < n) prefetch_point(vm_taps(p + 3 * (k + kPrefetch), P, L, C), P, L, C);
      pair_values(vm_taps(p + 3 * k, P, L, C), P, L, zeros.data(), C, pv.data(), lv.data(),
                  row.data());
      vec_mat(row.data(), K, bt, Fp, acc.data());
      std::copy(acc.begin(), acc.begin() + F, o + k * F);
    }
  }
}

// b: the basis (F, Kp) zero-padded; gb: per-thread basis gradients (T, F, Kp).
template <typename scalar_t>
void project_bwd_loop(const scalar_t* g, const scalar_t* p, int64_t n, int64_t C,
                      const Factors<scalar_t>& P, const Factors<scalar_t>& L, const scalar_t* b,
                      int64_t F, int64_t Kp, int T, const std::vector<at::Tensor>& gp,
                      const std::vector<at::Tensor>& gl, scalar_t* gb,
                      const std::vector<at::Tensor>& planes,
                      const std::vector<at::Tensor>& lines) {
#pragma omp parallel num_threads(T)
  {
    const int thread = omp_get_thread_num();
    const auto GP = thread_slice<scalar_t>(gp, planes, thread);
    const auto GL = thread_slice<scalar_t>(gl, lines, thread);
    scalar_t* GB = gb + thread * F * Kp;
    const std::vector<scalar_t> zeros(C, scalar_t(0));
    // row's padding stays zero, so the padded basis-gradient columns stay zero too.
    std::vector<scalar_t> pv(Kp), lv(Kp), dp(Kp), g_plane(C), g_line(C);
    // The last kGroup points' gradients and products, for the basis gradient; the products'
    // padding and unused slots stay zero, so they add nothing.
    std::vector<scalar_t> g_group(kGroup * F, scalar_t(0)), rows(kGroup * Kp, scalar_t(0));
    int filled = 0;
#pragma omp for schedule(static)
    for (int64_t k = 0; k < n; ++k) {
      if (k + kPrefetch < n) {
        const auto ahead = vm_taps(p + 3 * (k + kPrefetch), P, L, C);
        prefetch_point(ahead, P, L, C);
        for (int i = 0; i < 3; ++i) prefetch(GP.data[i], ahead.plane[i], 4, C, true);
      }
      const auto t = vm_taps(p + 3 * k, P, L, C);
      scalar_t* row = rows.data() + filled * Kp;
      pair_values(t, P, L, zeros.data(), C, pv.data(), lv.data(), row);
      const scalar_t* gk = g + k * F;
      std::copy(gk, gk + F, g_group.data() + filled * F);
      if (++filled == kGroup) {  // d basis += outer(g, products) for the group
        add_outer_group(GB, g_group.data(), F, rows.data(), Kp);
        filled = 0;
      }
      vec_mat(gk, F, b, Kp, dp.data());  // d products = g @ basis
      for (int i = 0; i < 3; ++i) {
        const scalar_t* d = dp.data() + i * C;
        for (int64_t c = 0; c < C; ++c) {
          g_plane[c] = d[c] * lv[i * C + c];
          g_line[c] = d[c] * pv[i * C + c];
        }
        scatter(GP.data[i], t.plane[i], 4, g_plane.data(), C);
        scatter(GL.data[i], t.line[i], 2, g_line.data(), C);
      }
    }
    if (filled > 0) {  // a partial group: zero the unused gradient slots
      std::fill(g_group.begin() + filled * F, g_group.end(), scalar_t(0));
      add_outer_group(GB, g_group.data(), F, rows.data(), Kp);
    }
  }
}

}  // namespace

at::Tensor vm_project_fwd_cpu(const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
                              const std::vector<at::Tensor>& lines, const at::Tensor& basis) {
  const int64_t n = xyz.size(0), C = planes[0].size(1), F = basis.size(0);
  auto out = at::zeros({n, F}, xyz.options());
  if (n == 0 || C == 0 || F == 0) return out;
  const int64_t Fp = padded(F);
  auto bt = at::zeros({3 * C, Fp}, basis.options());
  bt.narrow(1, 0, F).copy_(basis.t());
  const auto pts = xyz.contiguous();
  const auto pcl = channel_last(planes), lcl = channel_last(lines);
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "vm_project_fwd_cpu", [&] {
    project_fwd_loop<scalar_t>(pts.data_ptr<scalar_t>(), n, C, factors_of<scalar_t>(pcl, planes),
                               factors_of<scalar_t>(lcl, lines), bt.data_ptr<scalar_t>(), F, Fp,
                               out.data_ptr<scalar_t>());
  });
  return out;
}

std::vector<at::Tensor> vm_project_bwd_cpu(const at::Tensor& grad_out, const at::Tensor& xyz,
                                           const std::vector<at::Tensor>& planes,
                                           const std::vector<at::Tensor>& lines,
                                           const at::Tensor& basis) {
  const int64_t n = xyz.size(0), C = planes[0].size(1), F = basis.size(0);
  int64_t buffer_elems = basis.numel();
  for (int i = 0; i < 3; ++i) buffer_elems += planes[i].numel() + lines[i].numel();
  const int T = threads_for(n, buffer_elems * xyz.element_size());
  const auto pcl = channel_last(planes), lcl = channel_last(lines);
  const auto gp = thread_buffers(pcl, T), gl = thread_buffers(lcl, T);
  const int64_t K = 3 * C, Kp = padded(K);
  auto gb = at::zeros({T, F, Kp}, basis.options());
  if (n > 0 && C > 0 && F > 0) {
    const auto pts = xyz.contiguous();
    const auto go = grad_out.contiguous();
    auto b = at::zeros({F, Kp}, basis.options());
    b.narrow(1, 0, K).copy_(basis);
    AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "vm_project_bwd_cpu", [&] {
      project_bwd_loop<scalar_t>(go.data_ptr<scalar_t>(), pts.data_ptr<scalar_t>(), n, C,
                                 factors_of<scalar_t>(pcl, planes),
                                 factors_of<scalar_t>(lcl, lines), b.data_ptr<scalar_t>(), F, Kp,
                                 T, gp, gl, gb.data_ptr<scalar_t>(), planes, lines);
    });
  }
  std::vector<at::Tensor> grads;
  for (int i = 0; i < 3; ++i) grads.push_back(reduce_like(gp[i], planes[i]));
  for (int i = 0; i < 3; ++i) grads.push_back(reduce_like(gl[i], lines[i]));
  grads.push_back(gb.sum(0).narrow(1, 0, K).contiguous());
  return grads;
}

}  // namespace tf
