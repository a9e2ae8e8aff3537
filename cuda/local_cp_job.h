// The arithmetic of a local CP lookup, shared by local_cp.cpp and local_cp.cu (see there).
#pragma once

#include "aten_headers.h"

#include <cstdint>

#include "host_device.h"

namespace tf {

// One (point, cube) pair: the cube id, its weight, and per axis the two nodes' rows.
template <typename scalar_t>
struct Corner {
  int64_t id;
  scalar_t w;
  int64_t node[3];
  scalar_t frac[3];
  const scalar_t* lo[3];
  const scalar_t* hi[3];
};

// Pointers and sizes of one call (contiguous inputs): xyz (n, 3), ids / weights (n, k),
// centres (m, 3), lines (3, m, l, r).
template <typename scalar_t>
struct LocalCP {
  const scalar_t* xyz;
  const int64_t* ids;
  const scalar_t* weights;
  const scalar_t* centres;
  const scalar_t* lines;
  scalar_t half;
  int64_t n, k, m, l, r;

  static LocalCP of(const at::Tensor& xyz, const at::Tensor& ids, const at::Tensor& weights,
                    const at::Tensor& centres, double half_extent, const at::Tensor& lines) {
    return {xyz.data_ptr<scalar_t>(),     ids.data_ptr<int64_t>(),
            weights.data_ptr<scalar_t>(), centres.data_ptr<scalar_t>(),
            lines.data_ptr<scalar_t>(),   static_cast<scalar_t>(half_extent),
            xyz.size(0),                  ids.size(1),
            lines.size(1),                lines.size(2),
            lines.size(3)};
  }

  // Fills `c` for pair (i, slot); false when the slot holds no cube.
  TF_HOST_DEVICE bool corner(int64_t i, int64_t slot, Corner<scalar_t>& c) const {
    c.id = ids[i * k + slot];
    if (c.id < 0) return false;
    c.w = weights[i * k + slot];
    const scalar_t top = static_cast<scalar_t>(l - 1);
    for (int a = 0; a < 3; ++a) {
      scalar_t u = (xyz[i * 3 + a] - centres[c.id * 3 + a] + half) / (2 * half) * top;
      u = u < 0 ? scalar_t(0) : (u > top ? top : u);
      int64_t left = static_cast<int64_t>(u);  // u >= 0: truncation is floor
      if (left > l - 2) left = l - 2;
      c.node[a] = left;
      c.frac[a] = u - static_cast<scalar_t>(left);
      c.lo[a] = lines + ((a * m + c.id) * l + left) * r;
      c.hi[a] = c.lo[a] + r;
    }
    return true;
  }
};

}  // namespace tf
