// The arithmetic of Strivec's covering-cube lookup, shared by covering.cpp and covering.cu.
//
// Twin of covering_tensors in tensorfields/core/local_tensors.py (the oracle): a point's cell
// in the index grid (as cell_indices computes it) lists candidate cubes; among those whose cube
// (centre +- R, max-norm) holds the point, the k nearest by Euclidean distance are kept in
// ascending order (ties keep the table's order), with inverse-distance weights 1 / (d + eps)
// normalised to sum to 1. Slots without a cube get id -1 and weight 0.
#pragma once

#include "aten_headers.h"

#include <cmath>
#include <cstdint>

#include "host_device.h"

namespace tf {

TF_HOST_DEVICE inline float abs_of(float x) { return fabsf(x); }
TF_HOST_DEVICE inline double abs_of(double x) { return fabs(x); }
TF_HOST_DEVICE inline float sqrt_of(float x) { return sqrtf(x); }
TF_HOST_DEVICE inline double sqrt_of(double x) { return sqrt(x); }

// k above this is refused by the bindings (the per-point list lives on the stack).
constexpr int64_t kMaxCovering = 16;

template <typename scalar_t>
struct Covering {
  const scalar_t* xyz;      // (n, 3)
  const scalar_t* centres;  // (m, 3)
  const scalar_t* aabb;     // (6): the index grid's box
  const int64_t* cell_slot; // (cells): row of `table`, or -1
  const int64_t* table;     // (slots, c): cube ids, -1 padded
  int64_t res[3];
  int64_t n, slots, c, k;
  scalar_t half, eps;

  static Covering of(const at::Tensor& xyz, const at::Tensor& centres, double half_extent,
                     const at::Tensor& aabb, at::IntArrayRef resolution,
                     const at::Tensor& cell_slot, const at::Tensor& table, int64_t k,
                     double eps) {
    return {xyz.data_ptr<scalar_t>(),
            centres.data_ptr<scalar_t>(),
            aabb.data_ptr<scalar_t>(),
            cell_slot.data_ptr<int64_t>(),
            table.data_ptr<int64_t>(),
            {resolution[0], resolution[1], resolution[2]},
            xyz.size(0),
            table.size(0),
            table.size(1),
            k,
            static_cast<scalar_t>(half_extent),
            static_cast<scalar_t>(eps)};
  }

  // Writes the k ids and weights of point i.
  TF_HOST_DEVICE void lookup(int64_t i, int64_t* ids, scalar_t* weights) const {
    int64_t best_id[kMaxCovering];
    scalar_t best_d[kMaxCovering];
    int64_t found = 0;
    const scalar_t* p = xyz + i * 3;
    const int64_t slot = slot_of(p);
    if (slot >= 0) {
      const int64_t* row = table + slot * c;
      for (int64_t j = 0; j < c; ++j) {
        const int64_t id = row[j];
        if (id < 0) continue;
        const scalar_t* q = centres + id * 3;
        const scalar_t dx = p[0] - q[0], dy = p[1] - q[1], dz = p[2] - q[2];
        if (!(abs_of(dx) <= half && abs_of(dy) <= half && abs_of(dz) <= half)) continue;
        const scalar_t d = sqrt_of(dx * dx + dy * dy + dz * dz);
        // Insert into the ascending list; a tie goes after the equal ones (table order).
        int64_t at = found < k ? found : k;
        while (at > 0 && best_d[at - 1] > d) --at;
        if (at >= k) continue;
        const int64_t last = found < k ? found : k - 1;
        for (int64_t s = last; s > at; --s) {
          best_d[s] = best_d[s - 1];
          best_id[s] = best_id[s - 1];
        }
        best_d[at] = d;
        best_id[at] = id;
        if (found < k) ++found;
      }
    }
    scalar_t total = 0;
    for (int64_t s = 0; s < found; ++s) total += scalar_t(1) / (best_d[s] + eps);
    const scalar_t norm = total > scalar_t(1e-30) ? total : scalar_t(1e-30);
    for (int64_t s = 0; s < k; ++s) {
      ids[i * k + s] = s < found ? best_id[s] : -1;
      weights[i * k + s] = s < found ? (scalar_t(1) / (best_d[s] + eps)) / norm : scalar_t(0);
    }
  }

  // The index row of the point's cell, -1 outside the grid's box (as cell_indices).
  TF_HOST_DEVICE int64_t slot_of(const scalar_t* p) const {
    int64_t ijk[3];
    for (int a = 0; a < 3; ++a) {
      const scalar_t rel = (p[a] - aabb[a]) / (aabb[a + 3] - aabb[a]);
      if (!(rel >= 0 && rel <= 1)) return -1;
      int64_t cell = static_cast<int64_t>(rel * static_cast<scalar_t>(res[a]));
      ijk[a] = cell < res[a] - 1 ? cell : res[a] - 1;
    }
    if (slots == 0) return -1;
    return cell_slot[(ijk[0] * res[1] + ijk[1]) * res[2] + ijk[2]];
  }
};

}  // namespace tf
