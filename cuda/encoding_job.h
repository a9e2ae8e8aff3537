// The arithmetic of TensoRF's shading-MLP input, shared by encoding.cpp and encoding.cu.
//
// Twin of shading_input_torch in tensorfields/core/_torch_impl.py (the oracle). A row is
//   [f (F), d (3), sin(f_j 2^k) (F P), cos(f_j 2^k) (F P), sin(d_j 2^k) (3 V), cos(d_j 2^k) (3 V)]
// with j-major, k-minor order inside each block (the official code's layout). The backward
// reads the sines and cosines back from the forward's output instead of recomputing them.
#pragma once

#include "aten_headers.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "host_device.h"

namespace tf {

TF_HOST_DEVICE inline void sin_cos(float x, float* s, float* c) {
  *s = sinf(x);
  *c = cosf(x);
}
TF_HOST_DEVICE inline void sin_cos(double x, double* s, double* c) {
  *s = sin(x);
  *c = cos(x);
}

struct EncodingShape {
  int64_t F, P, V, D;  // features, feature bands, view bands, row width
  TF_HOST_DEVICE static EncodingShape of(int64_t F, int64_t P, int64_t V) {
    return {F, P, V, F + 3 + 2 * P * F + 6 * V};
  }
};

// sin and cos blocks of x (count values, bands each) at out_sin / out_cos.
template <typename scalar_t>
TF_HOST_DEVICE inline void encode_block(const scalar_t* x, int64_t count, int64_t bands,
                                        scalar_t* out_sin, scalar_t* out_cos) {
  for (int64_t j = 0; j < count; ++j) {
    scalar_t scale = 1;
    for (int64_t k = 0; k < bands; ++k, scale *= 2)
      sin_cos(x[j] * scale, out_sin + j * bands + k, out_cos + j * bands + k);
  }
}

#ifndef __CUDACC__
// CPU float: sines and cosines of a short array in a loop GCC vectorises (libm's sinf and cosf
// are scalar calls and made the op slower than PyTorch's vectorised ones). Cody-Waite reduction
// by pi/2 in three parts, then the Cephes polynomials on [-pi/4, pi/4]: within 2e-7 of the
// true values for |x| < 8192 (callers check the range and use libm beyond it).
constexpr float kPolyRange = 8192.0f;

inline void sin_cos_poly(const float* __restrict__ x, int64_t n, float scale,
                         float* __restrict__ s, float* __restrict__ c) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] * scale;
    const float q = std::nearbyint(v * 0.636619772367581343f);  // 2 / pi
    const float r = ((v - q * 1.5703125f) - q * 4.837512969970703125e-4f) -
                    q * 7.54978995489188216e-8f;
    const float r2 = r * r;
    const float sin_r =
        r + r * r2 * (-1.6666654611e-1f + r2 * (8.3321608736e-3f + r2 * -1.9515295891e-4f));
    const float cos_r = 1.0f - 0.5f * r2 +
                        r2 * r2 *
                            (4.166664568298827e-2f +
                             r2 * (-1.388731625493765e-3f + r2 * 2.443315711809948e-5f));
    const int quadrant = static_cast<int>(q) & 3;
    const float sin_v = (quadrant & 1) ? cos_r : sin_r;
    const float cos_v = (quadrant & 1) ? sin_r : cos_r;
    s[i] = (quadrant & 2) ? -sin_v : sin_v;
    c[i] = ((quadrant + 1) & 2) ? -cos_v : cos_v;
  }
}

inline void encode_block(const float* x, int64_t count, int64_t bands, float* out_sin,
                         float* out_cos) {
  constexpr int64_t kChunk = 64;
  float s[kChunk], c[kChunk];
  for (int64_t j0 = 0; j0 < count; j0 += kChunk) {
    const int64_t m = count - j0 < kChunk ? count - j0 : kChunk;
    float largest = 0;
    for (int64_t j = 0; j < m; ++j) largest = std::max(largest, std::fabs(x[j0 + j]));
    float scale = 1;
    for (int64_t k = 0; k < bands; ++k, scale *= 2) {
      if (!(largest * scale < kPolyRange)) {  // rare: large or non-finite features
        for (int64_t j = 0; j < m; ++j) sin_cos(x[j0 + j] * scale, s + j, c + j);
      } else {
        sin_cos_poly(x + j0, m, scale, s, c);
      }
      for (int64_t j = 0; j < m; ++j) {
        out_sin[(j0 + j) * bands + k] = s[j];
        out_cos[(j0 + j) * bands + k] = c[j];
      }
    }
  }
}
#endif

template <typename scalar_t>
TF_HOST_DEVICE inline void encode_row(const scalar_t* f, const scalar_t* d,
                                      const EncodingShape& s, scalar_t* row) {
  for (int64_t j = 0; j < s.F; ++j) row[j] = f[j];
  for (int64_t j = 0; j < 3; ++j) row[s.F + j] = d[j];
  scalar_t* pe = row + s.F + 3;
  encode_block(f, s.F, s.P, pe, pe + s.F * s.P);
  pe += 2 * s.F * s.P;
  encode_block(d, int64_t(3), s.V, pe, pe + 3 * s.V);
}

#ifndef __CUDACC__
// CPU float row: every scaled input of the row (features' bands, then the direction's) in one
// array padded to whole vectors, so that one call computes all sines and cosines with no
// scalar remainder (the remainders of two short calls cost more than the vector work).
constexpr int64_t kRowValues = 256;

inline void encode_row(const float* f, const float* d, const EncodingShape& s, float* row) {
  for (int64_t j = 0; j < s.F; ++j) row[j] = f[j];
  for (int64_t j = 0; j < 3; ++j) row[s.F + j] = d[j];
  float* pe = row + s.F + 3;
  const int64_t nf = s.F * s.P, nd = 3 * s.V, total = nf + nd;
  if (total + 16 > kRowValues) {  // wider than the buffers: block by block
    encode_block(f, s.F, s.P, pe, pe + nf);
    encode_block(d, int64_t(3), s.V, pe + 2 * nf, pe + 2 * nf + nd);
    return;
  }
  float scaled[kRowValues], sines[kRowValues], cosines[kRowValues];
  float largest = 0;
  const auto put = [&](const float* x, int64_t count, int64_t bands, float* dst) {
    for (int64_t j = 0; j < count; ++j) {
      float scale = 1;
      for (int64_t k = 0; k < bands; ++k, scale *= 2) dst[j * bands + k] = x[j] * scale;
      if (bands > 0) largest = std::max(largest, std::fabs(dst[j * bands + bands - 1]));
    }
  };
  put(f, s.F, s.P, scaled);
  put(d, 3, s.V, scaled + nf);
  const int64_t padded = (total + 15) / 16 * 16;
  for (int64_t e = total; e < padded; ++e) scaled[e] = 0;
  if (largest < kPolyRange) {
    sin_cos_poly(scaled, padded, 1.0f, sines, cosines);
  } else {  // rare: large or non-finite features
    for (int64_t e = 0; e < total; ++e) sin_cos(scaled[e], sines + e, cosines + e);
  }
  std::copy(sines, sines + nf, pe);
  std::copy(cosines, cosines + nf, pe + nf);
  std::copy(sines + nf, sines + total, pe + 2 * nf);
  std::copy(cosines + nf, cosines + total, pe + 2 * nf + nd);
}
#endif

// d row / d f_j: the identity column plus 2^k cos for the sines and -2^k sin for the cosines.
template <typename scalar_t>
TF_HOST_DEVICE inline void encode_row_grad(const scalar_t* grad, const scalar_t* row,
                                           const EncodingShape& s, scalar_t* grad_f) {
  const int64_t n_pe = s.F * s.P;
  const scalar_t* g_sin = grad + s.F + 3;
  const scalar_t* g_cos = g_sin + n_pe;
  const scalar_t* sines = row + s.F + 3;
  const scalar_t* cosines = sines + n_pe;
  for (int64_t j = 0; j < s.F; ++j) {
    scalar_t acc = grad[j], scale = 1;
    for (int64_t k = 0; k < s.P; ++k, scale *= 2) {
      const int64_t e = j * s.P + k;
      acc += scale * (g_sin[e] * cosines[e] - g_cos[e] * sines[e]);
    }
    grad_f[j] = acc;
  }
}

}  // namespace tf
