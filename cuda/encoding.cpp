// TensoRF's shading-MLP input on CPU: features, view direction and their positional
// encodings in one pass, and the features' gradient (see encoding_job.h).

#include "aten_headers.h"

#include <ATen/Parallel.h>

#include <cstring>
#include <vector>

#include "encoding_job.h"

namespace tf {
namespace {

constexpr int64_t kRowsPerTask = 256;

// float -> bfloat16 bits, rounding to nearest even as PyTorch's conversion does (NaN stays a
// quiet NaN). Branch-free but for NaN, so the row loops vectorise.
inline uint16_t bfloat16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  if (x != x) return 0x7FC0;
  return static_cast<uint16_t>((u + 0x7FFF + ((u >> 16) & 1)) >> 16);
}

inline float from_bfloat16_bits(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// Rows computed in float and stored as bfloat16: the MLP's autocast would make that copy of
// the whole (n, D) block anyway, and its backward the float copy of the gradient.
void encode_rows_bfloat16(const float* f, const float* d, const EncodingShape& shape, int64_t n,
                          uint16_t* out) {
  at::parallel_for(0, n, kRowsPerTask, [&](int64_t lo, int64_t hi) {
    std::vector<float> row(shape.D);
    for (int64_t i = lo; i < hi; ++i) {
      encode_row(f + i * shape.F, d + i * 3, shape, row.data());
      uint16_t* o = out + i * shape.D;
      for (int64_t j = 0; j < shape.D; ++j) o[j] = bfloat16_bits(row[j]);
    }
  });
}

void encode_grad_rows_bfloat16(const uint16_t* g, const uint16_t* o, const EncodingShape& shape,
                               int64_t n, float* grad_f) {
  at::parallel_for(0, n, kRowsPerTask, [&](int64_t lo, int64_t hi) {
    std::vector<float> g_row(shape.D), row(shape.D);
    for (int64_t i = lo; i < hi; ++i) {
      for (int64_t j = 0; j < shape.D; ++j) {
        g_row[j] = from_bfloat16_bits(g[i * shape.D + j]);
        row[j] = from_bfloat16_bits(o[i * shape.D + j]);
      }
      encode_row_grad(g_row.data(), row.data(), shape, grad_f + i * shape.F);
    }
  });
}

}  // namespace

at::Tensor shading_input_fwd_cpu(const at::Tensor& features, const at::Tensor& dirs,
                                 int64_t feature_pe, int64_t view_pe, bool bfloat16) {
  const int64_t n = features.size(0);
  const auto shape = EncodingShape::of(features.size(1), feature_pe, view_pe);
  if (bfloat16) {  // float32 features (checked by the bindings)
    auto out = at::empty({n, shape.D}, features.options().dtype(at::kBFloat16));
    encode_rows_bfloat16(features.data_ptr<float>(), dirs.data_ptr<float>(), shape, n,
                         reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>()));
    return out;
  }
  auto out = at::empty({n, shape.D}, features.options());
  AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "shading_input_fwd_cpu", [&] {
    const scalar_t* f = features.data_ptr<scalar_t>();
    const scalar_t* d = dirs.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, n, kRowsPerTask, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) encode_row(f + i * shape.F, d + i * 3, shape, o + i * shape.D);
    });
  });
  return out;
}

at::Tensor shading_input_bwd_cpu(const at::Tensor& grad_out, const at::Tensor& out,
                                 int64_t n_features, int64_t feature_pe, int64_t view_pe) {
  const int64_t n = out.size(0);
  const auto shape = EncodingShape::of(n_features, feature_pe, view_pe);
  if (out.scalar_type() == at::kBFloat16) {  // a bfloat16 forward: float32 feature gradients
    auto grad = at::empty({n, n_features}, out.options().dtype(at::kFloat));
    encode_grad_rows_bfloat16(reinterpret_cast<const uint16_t*>(grad_out.data_ptr<at::BFloat16>()),
                              reinterpret_cast<const uint16_t*>(out.data_ptr<at::BFloat16>()),
                              shape, n, grad.data_ptr<float>());
    return grad;
  }
  auto grad = at::empty({n, n_features}, out.options());
  AT_DISPATCH_FLOATING_TYPES(out.scalar_type(), "shading_input_bwd_cpu", [&] {
    const scalar_t* g = grad_out.data_ptr<scalar_t>();
    const scalar_t* o = out.data_ptr<scalar_t>();
    scalar_t* gf = grad.data_ptr<scalar_t>();
    at::parallel_for(0, n, kRowsPerTask, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i)
        encode_row_grad(g + i * shape.D, o + i * shape.D, shape, gf + i * shape.F);
    });
  });
  return grad;
}

}  // namespace tf
