// Gaussian rasterization, CPU (raster.cpp); bindings.cpp checks the arguments first. On CUDA
// tensors tensorfields calls gsplat instead, so there is no CUDA twin.
#pragma once

#include "aten_headers.h"

#include <vector>

namespace tf {

// (render (h, w, C), alpha (h, w)) of tile-binned 2D Gaussians; background may be empty.
std::vector<at::Tensor> rasterize_fwd_cpu(const at::Tensor& means2d, const at::Tensor& conics,
                                          const at::Tensor& colors, const at::Tensor& opacities,
                                          const at::Tensor& background, int64_t width,
                                          int64_t height, int64_t tile_size,
                                          const at::Tensor& ids, const at::Tensor& offsets);

// Gradients of means2d, conics, colors and opacities.
std::vector<at::Tensor> rasterize_bwd_cpu(const at::Tensor& grad_render,
                                          const at::Tensor& grad_alpha,
                                          const at::Tensor& means2d, const at::Tensor& conics,
                                          const at::Tensor& colors, const at::Tensor& opacities,
                                          const at::Tensor& background, int64_t width,
                                          int64_t height, int64_t tile_size,
                                          const at::Tensor& ids, const at::Tensor& offsets);

}  // namespace tf
