// Strivec's covering-cube lookup on CPU: per point, the k nearest cubes holding it among the
// candidates its index cell lists, and their normalised inverse-distance weights (see
// covering_job.h; the oracle is covering_tensors in tensorfields/core/local_tensors.py).

#include "aten_headers.h"

#include <ATen/Parallel.h>

#include <vector>

#include "covering_job.h"

namespace tf {

std::vector<at::Tensor> covering_tensors_cpu(const at::Tensor& xyz, const at::Tensor& centres,
                                             double half_extent, const at::Tensor& aabb,
                                             at::IntArrayRef resolution,
                                             const at::Tensor& cell_slot,
                                             const at::Tensor& table, int64_t k, double eps) {
  const int64_t n = xyz.size(0);
  auto ids = at::empty({n, k}, xyz.options().dtype(at::kLong));
  auto weights = at::empty({n, k}, xyz.options());
  AT_DISPATCH_FLOATING_TYPES(xyz.scalar_type(), "covering_tensors_cpu", [&] {
    const auto job = Covering<scalar_t>::of(xyz, centres, half_extent, aabb, resolution,
                                             cell_slot, table, k, eps);
    int64_t* out_ids = ids.data_ptr<int64_t>();
    scalar_t* out_w = weights.data_ptr<scalar_t>();
    at::parallel_for(0, n, 1024, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) job.lookup(i, out_ids, out_w);
    });
  });
  return {ids, weights};
}

}  // namespace tf
