// CPU helpers of the fused factor lookups, shared by vm_interp.cpp, vm_project.cpp and
// vm_transmittance.cpp: where a lookup reads (taps), prefetching, the channel-last views of the
// factors and the per-thread gradient buffers with their reduction. Conventions and speed notes: vm_interp.cpp.
#pragma once

#include "aten_headers.h"

#include <ATen/Parallel.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace tf {
namespace lookup {


constexpr int kPlaneAxes[3][2] = {{0, 1}, {0, 2}, {1, 2}};
constexpr int kLineAxes[3] = {2, 1, 0};
// Per-thread gradient buffers may use at most this much memory; past it fewer threads run.
constexpr int64_t kBufferBudgetBytes = int64_t(1) << 30;
// Points per thread below which starting another thread does not pay.
constexpr int64_t kPointsPerThread = 512;
constexpr int64_t kPrefetch = 4;

// Where one lookup reads: element offsets of its grid nodes' rows in a channel-last factor
// (-1: node outside the grid, zero padding) and their weights. Planes use 4 taps (corners in
// grid_sample's order nw, ne, sw, se), lines 2.
template <typename scalar_t>
struct Taps {
  int64_t off[4] = {-1, -1, -1, -1};
  scalar_t w[4] = {0, 0, 0, 0};
};

// The two nodes of a linear lookup along an axis of `size` nodes; -1 marks a node outside.
template <typename scalar_t>
inline void lerp_at(scalar_t x, int64_t size, int64_t i[2], scalar_t w[2]) {
  i[0] = i[1] = -1;
  w[0] = w[1] = 0;
  const scalar_t pos = (x + 1) / 2 * static_cast<scalar_t>(size - 1);
  // Negated test: NaN lands outside, and huge values never reach the int conversion.
  if (!(pos > -1 && pos < static_cast<scalar_t>(size))) return;
  const scalar_t f = std::floor(pos);
  const int64_t k = static_cast<int64_t>(f);
  w[0] = (f + 1) - pos;
  w[1] = pos - f;
  if (k >= 0) i[0] = k;
  if (k + 1 < size) i[1] = k + 1;
}

template <typename scalar_t>
inline Taps<scalar_t> plane_taps(scalar_t x_u, scalar_t x_v, int64_t H, int64_t W, int64_t C) {
  int64_t iu[2], iv[2];
  scalar_t wu[2], wv[2];
  lerp_at(x_u, W, iu, wu);
  lerp_at(x_v, H, iv, wv);
  Taps<scalar_t> t;
  for (int a = 0; a < 2; ++a) {
    for (int b = 0; b < 2; ++b) {
      if (iv[a] < 0 || iu[b] < 0) continue;
      t.off[2 * a + b] = (iv[a] * W + iu[b]) * C;
      t.w[2 * a + b] = wv[a] * wu[b];
    }
  }
  return t;
}

template <typename scalar_t>
inline Taps<scalar_t> line_taps(scalar_t x, int64_t L, int64_t C) {
  int64_t i[2];
  scalar_t w[2];
  lerp_at(x, L, i, w);
  Taps<scalar_t> t;
  for (int a = 0; a < 2; ++a) {
    if (i[a] < 0) continue;
    t.off[a] = i[a] * C;
    t.w[a] = w[a];
  }
  return t;
}

template <typename scalar_t>
inline void prefetch(const scalar_t* base, const Taps<scalar_t>& t, int taps, int64_t C,
                     bool write) {
  for (int j = 0; j < taps; ++j) {
    if (t.off[j] < 0) continue;
    const char* row = reinterpret_cast<const char*>(base + t.off[j]);
    for (int64_t b = 0; b < C * static_cast<int64_t>(sizeof(scalar_t)); b += 64) {
      if (write)
        __builtin_prefetch(row + b, 1);
      else
        __builtin_prefetch(row + b, 0);
    }
  }
}

// Row pointers of the taps; missing nodes read a row of zeros (weight 0), so the inner loops
// are branch-free.
template <typename scalar_t>
inline void rows_of(const scalar_t* base, const Taps<scalar_t>& t, int taps,
                    const scalar_t* zeros, const scalar_t* rows[4]) {
  for (int j = 0; j < taps; ++j) rows[j] = t.off[j] < 0 ? zeros : base + t.off[j];
}

// plane value * line value, one pass over C. __restrict__ lets GCC vectorise without
// alias checks (only dst is written).
template <typename scalar_t>
inline void vm_pair(scalar_t* __restrict__ dst, const scalar_t* __restrict__ p0,
                    const scalar_t* __restrict__ p1, const scalar_t* __restrict__ p2,
                    const scalar_t* __restrict__ p3, const scalar_t* __restrict__ l0,
                    const scalar_t* __restrict__ l1, const scalar_t* pw, const scalar_t* lw,
                    int64_t C) {
  const scalar_t w0 = pw[0], w1 = pw[1], w2 = pw[2], w3 = pw[3], v0 = lw[0], v1 = lw[1];
  for (int64_t c = 0; c < C; ++c)
    dst[c] = (w0 * p0[c] + w1 * p1[c] + w2 * p2[c] + w3 * p3[c]) * (v0 * l0[c] + v1 * l1[c]);
}

template <typename scalar_t>
inline void line_value(scalar_t* __restrict__ dst, const scalar_t* __restrict__ l0,
                       const scalar_t* __restrict__ l1, const scalar_t* lw, int64_t C) {
  const scalar_t v0 = lw[0], v1 = lw[1];
  for (int64_t c = 0; c < C; ++c) dst[c] = v0 * l0[c] + v1 * l1[c];
}

// Gradients of one pair's product w.r.t. its plane value and its line value.
template <typename scalar_t>
inline void vm_pair_grads(scalar_t* __restrict__ g_plane, scalar_t* __restrict__ g_line,
                          const scalar_t* __restrict__ g, const scalar_t* __restrict__ p0,
                          const scalar_t* __restrict__ p1, const scalar_t* __restrict__ p2,
                          const scalar_t* __restrict__ p3, const scalar_t* __restrict__ l0,
                          const scalar_t* __restrict__ l1, const scalar_t* pw,
                          const scalar_t* lw, int64_t C) {
  const scalar_t w0 = pw[0], w1 = pw[1], w2 = pw[2], w3 = pw[3], v0 = lw[0], v1 = lw[1];
  for (int64_t c = 0; c < C; ++c) {
    g_plane[c] = g[c] * (v0 * l0[c] + v1 * l1[c]);
    g_line[c] = g[c] * (w0 * p0[c] + w1 * p1[c] + w2 * p2[c] + w3 * p3[c]);
  }
}

// grad rows of the valid taps += weight * g.
template <typename scalar_t>
inline void axpy(scalar_t* __restrict__ y, scalar_t a, const scalar_t* __restrict__ x,
                 int64_t C) {
  for (int64_t c = 0; c < C; ++c) y[c] += a * x[c];
}

template <typename scalar_t>
inline void scatter(scalar_t* grad, const Taps<scalar_t>& t, int taps, const scalar_t* g,
                    int64_t C) {
  for (int j = 0; j < taps; ++j)
    if (t.off[j] >= 0) axpy(grad + t.off[j], t.w[j], g, C);
}

// (1, C, H, W) -> contiguous (H * W, C); lines (1, C, L, 1) -> (L, C). Free (a view) when the
// factor is already in channels_last memory format, as the Python wrapper passes it, so that
// forward and backward share one copy.
inline std::vector<at::Tensor> channel_last(const std::vector<at::Tensor>& factors) {
  std::vector<at::Tensor> out;
  for (const auto& f : factors)
    out.push_back(f.permute({0, 2, 3, 1}).reshape({-1, f.size(1)}).contiguous());
  return out;
}

inline int threads_for(int64_t n, int64_t buffer_bytes) {
  int64_t t = (n + kPointsPerThread - 1) / kPointsPerThread;
  t = std::min<int64_t>(t, at::get_num_threads());
  if (buffer_bytes > 0) t = std::min<int64_t>(t, kBufferBudgetBytes / buffer_bytes);
  return static_cast<int>(std::max<int64_t>(t, 1));
}

// Sum of the per-thread buffers (T, nodes, C), written in the layout of the factor in the same
// pass (the gradient of a large plane is tens of MB, so every extra pass over it shows):
// channel-last for channels_last factors (as TensoRF's planes are stored), else channel-first.
template <typename scalar_t>
void reduce_threads(const at::Tensor& bufs, bool channel_last_out, scalar_t* out) {
  const int64_t T = bufs.size(0), N = bufs.size(1), C = bufs.size(2);
  const scalar_t* src = bufs.data_ptr<scalar_t>();
  constexpr int64_t kBlock = 64;  // nodes per block: T * 64 * C values stay in L1/L2
  const int64_t blocks = (N + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) num_threads(threads_for(N, 0))
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t lo = blk * kBlock, hi = std::min(N, lo + kBlock);
    if (channel_last_out) {  // rows of C: add the threads' rows
      for (int64_t node = lo; node < hi; ++node) {
        scalar_t* row = out + node * C;
        for (int64_t c = 0; c < C; ++c) row[c] = src[node * C + c];
        for (int64_t t = 1; t < T; ++t) axpy(row, scalar_t(1), src + (t * N + node) * C, C);
      }
      continue;
    }
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t node = lo; node < hi; ++node) {
        scalar_t acc = 0;
        for (int64_t t = 0; t < T; ++t) acc += src[(t * N + node) * C + c];
        out[c * N + node] = acc;
      }
    }
  }
}

inline at::Tensor reduce_like(const at::Tensor& bufs, const at::Tensor& like) {
  const bool cl = like.size(3) > 1 && like.is_contiguous(at::MemoryFormat::ChannelsLast);
  auto out = at::empty(like.sizes(), bufs.options().memory_format(
                                         cl ? at::MemoryFormat::ChannelsLast
                                            : at::MemoryFormat::Contiguous));
  AT_DISPATCH_FLOATING_TYPES(bufs.scalar_type(), "reduce_threads", [&] {
    reduce_threads<scalar_t>(bufs, cl, out.data_ptr<scalar_t>());
  });
  return out;
}

// (T, nodes, C) zeroed per-thread gradient buffers, one per channel-last factor.
inline std::vector<at::Tensor> thread_buffers(const std::vector<at::Tensor>& cl, int T) {
  std::vector<at::Tensor> out;
  for (const auto& f : cl) out.push_back(at::zeros({T, f.size(0), f.size(1)}, f.options()));
  return out;
}


// Raw pointers and sizes of three factors, taken before the parallel region (data_ptr() and
// tensor indexing are far too slow for the per-point loop).
template <typename scalar_t>
struct Factors {
  scalar_t* data[3];
  int64_t rows[3], cols[3];  // plane: H, W; line: L, 1
};

template <typename scalar_t>
Factors<scalar_t> factors_of(const std::vector<at::Tensor>& cl,
                             const std::vector<at::Tensor>& orig) {
  Factors<scalar_t> f;
  for (int i = 0; i < 3; ++i) {
    f.data[i] = cl[i].data_ptr<scalar_t>();
    f.rows[i] = orig[i].size(2);
    f.cols[i] = orig[i].size(3);
  }
  return f;
}

// Slice t of each (T, nodes, C) per-thread buffer.
template <typename scalar_t>
Factors<scalar_t> thread_slice(const std::vector<at::Tensor>& bufs,
                               const std::vector<at::Tensor>& orig, int t) {
  Factors<scalar_t> f;
  for (int i = 0; i < 3; ++i) {
    f.data[i] = bufs[i].data_ptr<scalar_t>() + t * bufs[i].size(1) * bufs[i].size(2);
    f.rows[i] = orig[i].size(2);
    f.cols[i] = orig[i].size(3);
  }
  return f;
}

template <typename scalar_t>
struct VMTaps {
  Taps<scalar_t> plane[3], line[3];
};

template <typename scalar_t>
inline VMTaps<scalar_t> vm_taps(const scalar_t* p, const Factors<scalar_t>& P,
                                const Factors<scalar_t>& L, int64_t C) {
  VMTaps<scalar_t> t;
  for (int i = 0; i < 3; ++i) {
    t.plane[i] = plane_taps(p[kPlaneAxes[i][0]], p[kPlaneAxes[i][1]], P.rows[i], P.cols[i], C);
    t.line[i] = line_taps(p[kLineAxes[i]], L.rows[i], C);
  }
  return t;
}

// The plane value of one lookup: the weighted sum of its 4 rows.
template <typename scalar_t>
inline void plane_value(scalar_t* __restrict__ dst, const scalar_t* const rows[4],
                        const scalar_t* w, int64_t C) {
  const scalar_t* __restrict__ p0 = rows[0];
  const scalar_t* __restrict__ p1 = rows[1];
  const scalar_t* __restrict__ p2 = rows[2];
  const scalar_t* __restrict__ p3 = rows[3];
  for (int64_t c = 0; c < C; ++c) dst[c] = w[0] * p0[c] + w[1] * p1[c] + w[2] * p2[c] + w[3] * p3[c];
}

// Prefetches the plane and line rows one point's lookups will read.
template <typename scalar_t>
inline void prefetch_point(const VMTaps<scalar_t>& t, const Factors<scalar_t>& P,
                           const Factors<scalar_t>& L, int64_t C) {
  for (int i = 0; i < 3; ++i) {
    prefetch(P.data[i], t.plane[i], 4, C, false);
    prefetch(L.data[i], t.line[i], 2, C, false);
  }
}

// Sum of C values in four independent chains (a float sum does not vectorise without
// reassociation, and one chain waits on every add).
template <typename scalar_t>
inline scalar_t sum_of(const scalar_t* x, int64_t C) {
  scalar_t s[4] = {0, 0, 0, 0};
  int64_t c = 0;
  for (; c + 4 <= C; c += 4)
    for (int j = 0; j < 4; ++j) s[j] += x[c + j];
  for (; c < C; ++c) s[0] += x[c];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// One point's sum over the three pairs and C channels (vm_interp's summed mode, a TensoRF
// density): the pairs' products add up channel by channel (vectorised), then the channels in
// sum_of's chains (one serial chain of adds was a third of the summed loop's time). row and
// acc are scratch rows of C values.
template <typename scalar_t>
inline scalar_t summed_value(const VMTaps<scalar_t>& t, const Factors<scalar_t>& P,
                             const Factors<scalar_t>& L, const scalar_t* zeros, int64_t C,
                             scalar_t* row, scalar_t* acc) {
  const scalar_t* pr[4];
  const scalar_t* lr[4];
  std::fill(acc, acc + C, scalar_t(0));
  for (int i = 0; i < 3; ++i) {
    rows_of(P.data[i], t.plane[i], 4, zeros, pr);
    rows_of(L.data[i], t.line[i], 2, zeros, lr);
    vm_pair(row, pr[0], pr[1], pr[2], pr[3], lr[0], lr[1], t.plane[i].w, t.line[i].w, C);
    axpy(acc, scalar_t(1), row, C);
  }
  return sum_of(acc, C);
}

}  // namespace lookup
}  // namespace tf
