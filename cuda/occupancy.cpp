// Occupancy bitfield from per-cell alpha, CPU: threshold, max-pool dilation, bit packing.
//
// Twin of occupancy_bits_torch in tensorfields/core/_torch_impl.py (the oracle):
//   pack_bits(max_pool3d(alpha > threshold, kernel, stride 1, padding kernel // 2) > 0).
// A cube max-pool is separable, so the dilation runs as three 1-D passes (z, y, x) over bytes.
// Bit layout as in march.cpp: cell flat index (i * Y + j) * Z + k -> bit (flat & 7) of byte
// (flat >> 3).

#include "aten_headers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <vector>

namespace tf {
namespace {

// 1-D max over a window of +-radius along an axis of `len` cells; the array is viewed as
// (outer, len, inner). Parallel over (outer, position) so that every pass has work to split.
void dilate_axis(const uint8_t* in, uint8_t* out, int64_t outer, int64_t len, int64_t inner,
                 int64_t radius) {
  at::parallel_for(0, outer * len, std::max<int64_t>(1, 4096 / inner), [&](int64_t lo,
                                                                           int64_t hi) {
    for (int64_t line = lo; line < hi; ++line) {
      const int64_t a = line / len, i = line % len;
      const int64_t from = std::max<int64_t>(0, i - radius);
      const int64_t to = std::min<int64_t>(len - 1, i + radius);
      uint8_t* row = out + (a * len + i) * inner;
      std::fill(row, row + inner, uint8_t(0));
      for (int64_t j = from; j <= to; ++j) {
        const uint8_t* src = in + (a * len + j) * inner;
        for (int64_t c = 0; c < inner; ++c) row[c] |= src[c];
      }
    }
  });
}

template <typename scalar_t>
void threshold_loop(const scalar_t* alpha, int64_t n, scalar_t threshold, uint8_t* out) {
  at::parallel_for(0, n, 1 << 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) out[i] = alpha[i] > threshold;
  });
}

}  // namespace

at::Tensor occupancy_bits_cpu(const at::Tensor& alpha, double threshold, int64_t kernel) {
  const int64_t X = alpha.size(0), Y = alpha.size(1), Z = alpha.size(2), n = alpha.numel();
  const auto a = alpha.contiguous();
  std::vector<uint8_t> cells(n), tmp(n);
  AT_DISPATCH_FLOATING_TYPES(alpha.scalar_type(), "occupancy_bits_cpu", [&] {
    threshold_loop<scalar_t>(a.data_ptr<scalar_t>(), n, static_cast<scalar_t>(threshold),
                             cells.data());
  });
  const int64_t radius = kernel / 2;
  if (radius > 0) {
    dilate_axis(cells.data(), tmp.data(), X * Y, Z, 1, radius);  // along z
    dilate_axis(tmp.data(), cells.data(), X, Y, Z, radius);      // along y
    dilate_axis(cells.data(), tmp.data(), 1, X, Y * Z, radius);  // along x
    cells.swap(tmp);
  }
  auto bits = at::empty({(n + 7) / 8}, alpha.options().dtype(at::kByte));
  uint8_t* b = bits.data_ptr<uint8_t>();
  at::parallel_for(0, bits.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t byte = lo; byte < hi; ++byte) {
      uint8_t v = 0;
      for (int64_t k = 0; k < 8 && byte * 8 + k < n; ++k) v |= cells[byte * 8 + k] << k;
      b[byte] = v;
    }
  });
  return bits;
}

}  // namespace tf
