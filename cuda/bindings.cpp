// Python bindings of the native core: checks arguments once, then dispatches on the device.
// CUDA implementations are compiled in only when TF_WITH_CUDA is defined (the loader defines
// it when it also compiles the .cu files).

#include <torch/extension.h>

#include <vector>

namespace tf {

at::Tensor vm_interp_fwd_cpu(const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
                             const std::vector<at::Tensor>& lines);
std::vector<at::Tensor> vm_interp_bwd_cpu(const at::Tensor& grad_out, const at::Tensor& xyz,
                                          const std::vector<at::Tensor>& planes,
                                          const std::vector<at::Tensor>& lines);
at::Tensor cp_interp_fwd_cpu(const at::Tensor& xyz, const std::vector<at::Tensor>& lines);
std::vector<at::Tensor> cp_interp_bwd_cpu(const at::Tensor& grad_out, const at::Tensor& xyz,
                                          const std::vector<at::Tensor>& lines);

#ifdef TF_WITH_CUDA
at::Tensor vm_interp_fwd_cuda(const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
                              const std::vector<at::Tensor>& lines);
std::vector<at::Tensor> vm_interp_bwd_cuda(const at::Tensor& grad_out, const at::Tensor& xyz,
                                           const std::vector<at::Tensor>& planes,
                                           const std::vector<at::Tensor>& lines);
at::Tensor cp_interp_fwd_cuda(const at::Tensor& xyz, const std::vector<at::Tensor>& lines);
std::vector<at::Tensor> cp_interp_bwd_cuda(const at::Tensor& grad_out, const at::Tensor& xyz,
                                           const std::vector<at::Tensor>& lines);
constexpr bool kWithCuda = true;
#else
constexpr bool kWithCuda = false;
#endif

namespace {

void check_points(const at::Tensor& xyz) {
  TORCH_CHECK(xyz.dim() == 2 && xyz.size(1) == 3, "xyz must be (n, 3), got ", xyz.sizes());
  TORCH_CHECK(xyz.scalar_type() == at::kFloat || xyz.scalar_type() == at::kDouble,
              "xyz must be float32 or float64, got ", xyz.scalar_type());
  TORCH_CHECK(xyz.is_cpu() || xyz.is_cuda(), "native ops run on CPU or CUDA, got ", xyz.device());
  TORCH_CHECK(!xyz.is_cuda() || kWithCuda, "tensorfields_native was built without CUDA");
}

// Each factor: (1, C, rows, cols) with the same C, dtype and device as xyz; lines have cols 1.
void check_factors(const at::Tensor& xyz, const std::vector<at::Tensor>& factors, bool line,
                   int64_t C) {
  TORCH_CHECK(factors.size() == 3, "expected 3 ", line ? "lines" : "planes");
  for (const auto& f : factors) {
    TORCH_CHECK(f.dim() == 4 && f.size(0) == 1 && f.size(1) == C && f.size(2) > 0 &&
                    f.size(3) > 0 && (!line || f.size(3) == 1),
                line ? "lines must be (1, C, L, 1)" : "planes must be (1, C, H, W)",
                " with one C, got ", f.sizes());
    TORCH_CHECK(f.scalar_type() == xyz.scalar_type() && f.device() == xyz.device(),
                "factors must match xyz's dtype and device");
  }
}

void check_grad(const at::Tensor& grad_out, const at::Tensor& xyz, at::IntArrayRef shape) {
  TORCH_CHECK(grad_out.sizes() == shape, "grad_out must be ", shape, ", got ", grad_out.sizes());
  TORCH_CHECK(grad_out.scalar_type() == xyz.scalar_type() && grad_out.device() == xyz.device(),
              "grad_out must match xyz's dtype and device");
}

at::Tensor vm_fwd(const at::Tensor& xyz, const std::vector<at::Tensor>& planes,
                  const std::vector<at::Tensor>& lines) {
  check_points(xyz);
  TORCH_CHECK(!planes.empty(), "expected 3 planes");
  check_factors(xyz, planes, false, planes[0].size(1));
  check_factors(xyz, lines, true, planes[0].size(1));
#ifdef TF_WITH_CUDA
  if (xyz.is_cuda()) return vm_interp_fwd_cuda(xyz, planes, lines);
#endif
  return vm_interp_fwd_cpu(xyz, planes, lines);
}

std::vector<at::Tensor> vm_bwd(const at::Tensor& grad_out, const at::Tensor& xyz,
                               const std::vector<at::Tensor>& planes,
                               const std::vector<at::Tensor>& lines) {
  check_points(xyz);
  TORCH_CHECK(!planes.empty(), "expected 3 planes");
  const int64_t C = planes[0].size(1);
  check_factors(xyz, planes, false, C);
  check_factors(xyz, lines, true, C);
  check_grad(grad_out, xyz, {xyz.size(0), 3, C});
#ifdef TF_WITH_CUDA
  if (xyz.is_cuda()) return vm_interp_bwd_cuda(grad_out, xyz, planes, lines);
#endif
  return vm_interp_bwd_cpu(grad_out, xyz, planes, lines);
}

at::Tensor cp_fwd(const at::Tensor& xyz, const std::vector<at::Tensor>& lines) {
  check_points(xyz);
  TORCH_CHECK(!lines.empty(), "expected 3 lines");
  check_factors(xyz, lines, true, lines[0].size(1));
#ifdef TF_WITH_CUDA
  if (xyz.is_cuda()) return cp_interp_fwd_cuda(xyz, lines);
#endif
  return cp_interp_fwd_cpu(xyz, lines);
}

std::vector<at::Tensor> cp_bwd(const at::Tensor& grad_out, const at::Tensor& xyz,
                               const std::vector<at::Tensor>& lines) {
  check_points(xyz);
  TORCH_CHECK(!lines.empty(), "expected 3 lines");
  check_factors(xyz, lines, true, lines[0].size(1));
  check_grad(grad_out, xyz, {xyz.size(0), lines[0].size(1)});
#ifdef TF_WITH_CUDA
  if (xyz.is_cuda()) return cp_interp_bwd_cuda(grad_out, xyz, lines);
#endif
  return cp_interp_bwd_cpu(grad_out, xyz, lines);
}

}  // namespace
}  // namespace tf

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "tensorfields native core (see tensorfields/core/native.py)";
  m.attr("with_cuda") = tf::kWithCuda;
  m.def("vm_interp_fwd", &tf::vm_fwd, "VM lookups (n, 3, C)", py::arg("xyz"), py::arg("planes"),
        py::arg("lines"));
  m.def("vm_interp_bwd", &tf::vm_bwd, "grads of the 3 planes, then the 3 lines (none for xyz)",
        py::arg("grad_out"), py::arg("xyz"), py::arg("planes"), py::arg("lines"));
  m.def("cp_interp_fwd", &tf::cp_fwd, "CP lookups (n, C)", py::arg("xyz"), py::arg("lines"));
  m.def("cp_interp_bwd", &tf::cp_bwd, "grads of the 3 lines (none for xyz)",
        py::arg("grad_out"), py::arg("xyz"), py::arg("lines"));
}
