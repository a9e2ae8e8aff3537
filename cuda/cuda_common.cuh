// Small helpers shared by the CUDA sources of the native core.
#pragma once

#include <cstdint>

namespace tf {

constexpr int kCudaThreads = 256;

inline int64_t cuda_blocks(int64_t count) { return (count + kCudaThreads - 1) / kCudaThreads; }

// Rounded multiply and add that nvcc never fuses into an FMA: marching must round exactly like
// its CPU and PyTorch twins, or a midpoint on a cell face can land in another cell.
__device__ inline float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ inline double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ inline float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ inline double add_rn(double a, double b) { return __dadd_rn(a, b); }

}  // namespace tf
