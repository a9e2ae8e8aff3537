// Gaussian rasterization, CPU: front-to-back alpha compositing of tile-binned 2D Gaussians,
// forward and backward. On CUDA tensors tensorfields uses gsplat instead (no .cu twin here).
//
// Twin of rasterize_to_pixels_torch in tensorfields/core/_torch_impl.py (the oracle). Per pixel
// centre p and Gaussian g of its tile (front first): d = mean_g - p,
// s = 0.5 (a dx^2 + c dy^2) + b dx dy, alpha = min(0.999, o_g exp(-s)); skip s < 0 or
// alpha < 1/255; stop before a Gaussian that would leave transmittance T <= 1e-4.
// colour = sum alpha_g T_g c_g + T_final * background, alpha = 1 - T_final.

#include "aten_headers.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "raster.h"

namespace tf {
namespace {

constexpr double kAlphaMax = 0.999;
constexpr double kAlphaMin = 1.0 / 255.0;
constexpr double kTransmittanceMin = 1e-4;
constexpr int64_t kGeom = 7;  // values gathered per Gaussian of a tile

template <typename scalar_t>
struct Raster {
  const scalar_t* means2d;    // (n, 2)
  const scalar_t* conics;     // (n, 3)
  const scalar_t* colors;     // (n, C)
  const scalar_t* opacities;  // (n)
  const scalar_t* background; // (C) or nullptr
  const int64_t* ids;         // (isects) Gaussian of each intersection, tile by tile
  const int64_t* offsets;     // (tiles + 1)
  int64_t C, width, height, tile_size, tiles_x, tiles;

  // One Gaussian's contribution to one pixel, as the forward pass met it; `k` indexes the tile.
  struct Hit {
    int64_t k;
    scalar_t alpha, T, vis, dx, dy;
    bool clamped;
  };

  // A tile's Gaussians gathered in compositing order: every pixel of the tile reads them, so
  // contiguous copies beat chasing ids into the global arrays 256 times.
  struct Tile {
    int64_t first = 0, count = 0;
    // per Gaussian: mean x, mean y, conic a, b, c, opacity, and the exponent above which its
    // alpha is surely below 1/255 (most pixels of a tile: skipping them saves the exp).
    std::vector<scalar_t> geom;
    std::vector<scalar_t> colour;  // per Gaussian: C channels
  };

  void gather(int64_t tile, Tile& t) const {
    t.first = offsets[tile];
    t.count = offsets[tile + 1] - t.first;
    t.geom.resize(kGeom * t.count);
    t.colour.resize(C * t.count);
    for (int64_t k = 0; k < t.count; ++k) {
      const int64_t g = ids[t.first + k];
      scalar_t* q = t.geom.data() + kGeom * k;
      q[0] = means2d[2 * g], q[1] = means2d[2 * g + 1];
      q[2] = conics[3 * g], q[3] = conics[3 * g + 1], q[4] = conics[3 * g + 2];
      q[5] = opacities[g];
      // A margin keeps the cut conservative: near it, the exact test below decides.
      q[6] = q[5] > 0 ? std::log(q[5] / scalar_t(kAlphaMin)) + scalar_t(1e-3) : scalar_t(-1);
      std::copy(colors + g * C, colors + (g + 1) * C, t.colour.data() + C * k);
    }
  }

  // Composites pixel (x, y) over tile `t`; fills `hits` front to back and returns T_final.
  scalar_t composite(const Tile& t, int64_t x, int64_t y, std::vector<Hit>& hits) const {
    hits.clear();
    const scalar_t px = scalar_t(x) + scalar_t(0.5), py = scalar_t(y) + scalar_t(0.5);
    scalar_t T = 1;
    for (int64_t k = 0; k < t.count; ++k) {
      const scalar_t* q = t.geom.data() + kGeom * k;
      const scalar_t dx = q[0] - px, dy = q[1] - py;
      const scalar_t s = scalar_t(0.5) * (q[2] * dx * dx + q[4] * dy * dy) + q[3] * dx * dy;
      if (s < 0 || s > q[6]) continue;
      const scalar_t vis = std::exp(-s);
      const scalar_t raw = q[5] * vis;
      const bool clamped = raw > scalar_t(kAlphaMax);
      const scalar_t alpha = clamped ? scalar_t(kAlphaMax) : raw;
      if (alpha < scalar_t(kAlphaMin)) continue;
      const scalar_t next = T * (1 - alpha);
      if (next <= scalar_t(kTransmittanceMin)) break;
      hits.push_back({k, alpha, T, vis, dx, dy, clamped});
      T = next;
    }
    return T;
  }

  // Calls fn(gathered tile, x, y, hits buffer) for every pixel of the non-empty tiles, tiles
  // split over threads.
  template <typename Fn>
  void for_each_pixel(Fn fn) const {
    at::parallel_for(0, tiles, 1, [&](int64_t t0, int64_t t1) {
      std::vector<Hit> hits;
      Tile t;
      for (int64_t tile = t0; tile < t1; ++tile) {
        if (offsets[tile + 1] == offsets[tile]) continue;  // pixels keep their preset values
        gather(tile, t);
        const int64_t x0 = (tile % tiles_x) * tile_size, y0 = (tile / tiles_x) * tile_size;
        for (int64_t y = y0; y < std::min(y0 + tile_size, height); ++y)
          for (int64_t x = x0; x < std::min(x0 + tile_size, width); ++x) fn(t, x, y, hits);
      }
    });
  }
};

template <typename scalar_t>
Raster<scalar_t> raster_of(const at::Tensor& means2d, const at::Tensor& conics,
                           const at::Tensor& colors, const at::Tensor& opacities,
                           const at::Tensor& background, int64_t width, int64_t height,
                           int64_t tile_size, const at::Tensor& ids, const at::Tensor& offsets) {
  return {means2d.data_ptr<scalar_t>(),
          conics.data_ptr<scalar_t>(),
          colors.data_ptr<scalar_t>(),
          opacities.data_ptr<scalar_t>(),
          background.numel() ? background.data_ptr<scalar_t>() : nullptr,
          ids.data_ptr<int64_t>(),
          offsets.data_ptr<int64_t>(),
          colors.size(1),
          width,
          height,
          tile_size,
          (width + tile_size - 1) / tile_size,
          offsets.size(0) - 1};
}

}  // namespace

std::vector<at::Tensor> rasterize_fwd_cpu(const at::Tensor& means2d, const at::Tensor& conics,
                                          const at::Tensor& colors, const at::Tensor& opacities,
                                          const at::Tensor& background, int64_t width,
                                          int64_t height, int64_t tile_size,
                                          const at::Tensor& ids, const at::Tensor& offsets) {
  const int64_t C = colors.size(1);
  // Pixels of empty tiles keep these: no colour but the background, alpha 0.
  auto render = background.numel() ? background.expand({height, width, C}).contiguous()
                                   : at::zeros({height, width, C}, colors.options());
  auto alpha = at::zeros({height, width}, colors.options());
  AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "rasterize_fwd_cpu", [&] {
    const auto job = raster_of<scalar_t>(means2d, conics, colors, opacities, background, width,
                                         height, tile_size, ids, offsets);
    scalar_t* out = render.data_ptr<scalar_t>();
    scalar_t* acc = alpha.data_ptr<scalar_t>();
    job.for_each_pixel([&](const auto& t, int64_t x, int64_t y, auto& hits) {
      const scalar_t T = job.composite(t, x, y, hits);
      scalar_t* pixel = out + (y * width + x) * C;
      for (int64_t c = 0; c < C; ++c) pixel[c] = job.background ? T * job.background[c] : 0;
      for (const auto& h : hits) {
        const scalar_t w = h.alpha * h.T;
        const scalar_t* colour = t.colour.data() + h.k * C;
        for (int64_t c = 0; c < C; ++c) pixel[c] += w * colour[c];
      }
      acc[y * width + x] = 1 - T;
    });
  });
  return {render, alpha};
}

// Gradients per intersection first (each belongs to one tile, so threads never share a row),
// then summed per Gaussian in intersection order: deterministic for any thread count.
std::vector<at::Tensor> rasterize_bwd_cpu(const at::Tensor& grad_render,
                                          const at::Tensor& grad_alpha,
                                          const at::Tensor& means2d, const at::Tensor& conics,
                                          const at::Tensor& colors, const at::Tensor& opacities,
                                          const at::Tensor& background, int64_t width,
                                          int64_t height, int64_t tile_size,
                                          const at::Tensor& ids, const at::Tensor& offsets) {
  const int64_t C = colors.size(1), row = 6 + C;
  auto per_isect = at::zeros({ids.size(0), row}, colors.options());
  auto grad_means2d = at::zeros_like(means2d);
  auto grad_conics = at::zeros_like(conics);
  auto grad_colors = at::zeros_like(colors);
  auto grad_opacities = at::zeros_like(opacities);
  AT_DISPATCH_FLOATING_TYPES(colors.scalar_type(), "rasterize_bwd_cpu", [&] {
    const auto job = raster_of<scalar_t>(means2d, conics, colors, opacities, background, width,
                                         height, tile_size, ids, offsets);
    const scalar_t* g_render = grad_render.data_ptr<scalar_t>();
    const scalar_t* g_alpha = grad_alpha.data_ptr<scalar_t>();
    scalar_t* buf = per_isect.data_ptr<scalar_t>();
    job.for_each_pixel([&](const auto& t, int64_t x, int64_t y, auto& hits) {
      const scalar_t T_final = job.composite(t, x, y, hits);
      const scalar_t* g_out = g_render + (y * width + x) * C;
      // d(output)/d(T_final), through the background blend and alpha = 1 - T_final.
      scalar_t g_T_final = -g_alpha[y * width + x];
      if (job.background)
        for (int64_t c = 0; c < C; ++c) g_T_final += job.background[c] * g_out[c];
      std::vector<scalar_t> behind(C, 0);  // sum over later hits of w * colour
      for (auto h = hits.rbegin(); h != hits.rend(); ++h) {
        const scalar_t* q = t.geom.data() + kGeom * h->k;
        const scalar_t* colour = t.colour.data() + h->k * C;
        scalar_t* out = buf + (t.first + h->k) * row;
        const scalar_t w = h->alpha * h->T, keep = 1 / (1 - h->alpha);
        scalar_t g_alpha_h = g_T_final * (-T_final * keep);
        for (int64_t c = 0; c < C; ++c) {
          out[6 + c] += w * g_out[c];
          g_alpha_h += g_out[c] * (colour[c] * h->T - behind[c] * keep);
          behind[c] += w * colour[c];
        }
        if (h->clamped) continue;
        const scalar_t g_s = -q[5] * h->vis * g_alpha_h;
        out[0] += g_s * (q[2] * h->dx + q[3] * h->dy);
        out[1] += g_s * (q[4] * h->dy + q[3] * h->dx);
        out[2] += g_s * scalar_t(0.5) * h->dx * h->dx;
        out[3] += g_s * h->dx * h->dy;
        out[4] += g_s * scalar_t(0.5) * h->dy * h->dy;
        out[5] += h->vis * g_alpha_h;
      }
    });
    scalar_t* gm = grad_means2d.data_ptr<scalar_t>();
    scalar_t* gq = grad_conics.data_ptr<scalar_t>();
    scalar_t* gc = grad_colors.data_ptr<scalar_t>();
    scalar_t* go = grad_opacities.data_ptr<scalar_t>();
    const int64_t* id = ids.data_ptr<int64_t>();
    for (int64_t k = 0; k < ids.size(0); ++k) {
      const scalar_t* in = buf + k * row;
      const int64_t g = id[k];
      gm[2 * g] += in[0];
      gm[2 * g + 1] += in[1];
      for (int a = 0; a < 3; ++a) gq[3 * g + a] += in[2 + a];
      go[g] += in[5];
      for (int64_t c = 0; c < C; ++c) gc[g * C + c] += in[6 + c];
    }
  });
  return {grad_means2d, grad_conics, grad_colors, grad_opacities};
}

}  // namespace tf
