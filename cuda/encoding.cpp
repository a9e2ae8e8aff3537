// TensoRF's shading-MLP input on CPU: features, view direction and their positional
// encodings in one pass, and the features' gradient (see encoding_job.h).

#include <torch/extension.h>

#include <ATen/Parallel.h>

#include "encoding_job.h"

namespace tf {

constexpr int64_t kRowsPerTask = 256;

at::Tensor shading_input_fwd_cpu(const at::Tensor& features, const at::Tensor& dirs,
                                 int64_t feature_pe, int64_t view_pe) {
  const int64_t n = features.size(0);
  const auto shape = EncodingShape::of(features.size(1), feature_pe, view_pe);
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
